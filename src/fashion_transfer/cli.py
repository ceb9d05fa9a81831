"""Project CLI: Kedro's own `kedro run` (`--pipeline` kept as a name for `--pipelines`),
but problems with the user's input (data files, saved models, parameters) end in their
one-paragraph message instead of a traceback (anything else is a bug and keeps its
traceback), and Ctrl-C or SIGTERM marks the MLflow run KILLED."""

from __future__ import annotations

import signal

import click
import mlflow
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError
from mlflow.entities import RunStatus
from omegaconf.errors import InterpolationResolutionError

from fashion_transfer import errors

USER_ERRORS = (DatasetError, InterpolationResolutionError, *errors.USER_ERRORS)


def _message(error: Exception) -> str:
    """The error's own message; for one raised while OmegaConf resolved a parameter (a preset,
    the tuned recipe), that of the project's error behind it, without OmegaConf's key dump."""
    cause = error
    while cause is not None and (
        isinstance(cause, InterpolationResolutionError) or not isinstance(cause, USER_ERRORS)
    ):
        cause = cause.__cause__ or cause.__context__
    return str(cause or error)


class RunWithClearErrors(click.Command):
    def invoke(self, ctx: click.Context):
        signal.signal(signal.SIGTERM, _interrupt)
        # `--pipeline NAME` is how the project's docs run one pipeline; Kedro 1.7 deprecates it
        # for `--pipelines`, which takes the same name, so it is passed on as that, unwarned.
        if ctx.params["pipeline"] and not ctx.params["pipelines"]:
            ctx.params["pipelines"] = [ctx.params["pipeline"]]
            ctx.params["pipeline"] = None
        try:
            return super().invoke(ctx)
        except USER_ERRORS as error:
            raise click.ClickException(_message(error)) from None
        except ValueError as error:
            if not str(error).startswith("Failed to find the pipeline named"):
                raise
            raise click.ClickException(f"{error} Run `kedro registry list` to see them.") from None
        except KeyboardInterrupt:
            # Kedro's error hooks see only Exceptions; without this MLflow's exit handler would
            # mark the run FINISHED. kedro-mlflow may have the run on the stack more than once.
            while mlflow.active_run() is not None:
                mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
            raise click.ClickException(
                "Interrupted. The MLflow run is marked KILLED and registered nothing; files "
                "saved before the interruption are intact. Run again to start over."
            ) from None


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@click.group(name="fashion-transfer")
def cli() -> None:
    """Project commands."""


cli.add_command(
    RunWithClearErrors(
        name="run", params=kedro_run.params, callback=kedro_run.callback, help=kedro_run.help
    )
)
