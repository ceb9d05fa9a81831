"""Project CLI: Kedro's own `kedro run` (`--pipeline` kept as a name for `--pipelines`),
but problems with the user's input (data files, saved models, parameters) end in their
one-paragraph message instead of a traceback (anything else is a bug and keeps its
traceback), and Ctrl-C or SIGTERM marks the MLflow run KILLED.

MLflow is not imported here: the `kedro` command loads this module at every start (`kedro
--help` too), and a run that has not imported MLflow has no MLflow run or error to handle."""

from __future__ import annotations

import errno
import sys

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError
from omegaconf.errors import InterpolationResolutionError

from fashion_transfer import errors
from fashion_transfer.framework import interrupt
from fashion_transfer.mlflow.store import unreachable
from fashion_transfer.redact import redact

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
        interrupt.install()
        # `--pipeline NAME` is how the project's docs run one pipeline; Kedro 1.7 deprecates it
        # for `--pipelines`, which takes the same name, so it is passed on as that, unwarned.
        if ctx.params["pipeline"] and not ctx.params["pipelines"]:
            ctx.params["pipelines"] = [ctx.params["pipeline"]]
            ctx.params["pipeline"] = None
        try:
            result = super().invoke(ctx)
            interrupt.check()  # a signal whose exception a finaliser swallowed
            return result
        except USER_ERRORS as error:  # Kedro wraps a dataset's MLflow failure in one
            if lost := _server_lost(error):
                raise click.ClickException(lost) from None
            _end_runs("FAILED")
            raise click.ClickException(_disk_full(error) or _message(error)) from None
        except KeyboardInterrupt:
            _end_runs("KILLED")
            raise click.ClickException(
                "Interrupted. The MLflow run is marked KILLED and registered nothing; files "
                "saved before the interruption are intact. Run again to start over."
            ) from None
        except Exception as error:
            if lost := _server_lost(error):
                raise click.ClickException(lost) from None
            _end_runs("FAILED")
            if isinstance(error, ValueError) and str(error).startswith(
                "Failed to find the pipeline named"
            ):
                raise click.ClickException(
                    f"{error} Run `kedro registry list` to see them."
                ) from None
            if full := _disk_full(error):
                raise click.ClickException(full) from None
            raise


def _server_lost(error: BaseException) -> str | None:
    """The message for a run whose tracking server stopped answering while it ran (MLflow's
    retries already cut to seconds, mlflow/store.py), however deep it was wrapped."""
    if "mlflow" not in sys.modules:  # no MLflow call was made: none failed
        return None
    import mlflow

    cause = error
    while cause is not None:
        if isinstance(cause, mlflow.exceptions.MlflowException) and unreachable(cause):
            try:
                _end_runs("FAILED")
            except Exception:  # the server is still gone: the run stays open there
                pass
            return (
                f"The MLflow tracking server at {redact(mlflow.get_tracking_uri())} stopped "
                f"answering during the run ({str(cause).splitlines()[0][:200]}). Start it "
                "again (`make team-up` for the team's stack) and run again: the files saved "
                "before are intact; the run may show as RUNNING there, and if the server went "
                "while models were being registered, versions of this run may remain."
            )
        cause = cause.__cause__ or cause.__context__
    return None


def _disk_full(error: BaseException) -> str | None:
    """The message for an error caused by a full disk, however deep Kedro wrapped it."""
    cause = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            where = f" writing {cause.filename}" if cause.filename else ""
            return (
                f"The disk is full{where}. Free some space and run again: the files saved "
                "before are intact (each is written whole or not at all) and the MLflow run "
                "is marked FAILED."
            )
        cause = cause.__cause__ or cause.__context__
    return None


def _end_runs(status: str) -> None:
    """End the MLflow runs still open with `status` (FAILED, KILLED): a failure after the
    pipeline (while registering) or an interruption is not seen by kedro-mlflow's error hook,
    and MLflow's exit handler would mark the run FINISHED. kedro-mlflow may have the run on
    the stack more than once."""
    if "mlflow" not in sys.modules:  # MLflow not imported: no run was started
        return
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(status)


@click.group(name="fashion-transfer")
def cli() -> None:
    """Project commands."""


cli.add_command(
    RunWithClearErrors(
        name="run", params=kedro_run.params, callback=kedro_run.callback, help=kedro_run.help
    )
)
