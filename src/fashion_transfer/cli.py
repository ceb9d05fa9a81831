"""Project CLI: Kedro's own `kedro run`, but problems with the user's input (data files, saved
models, parameters) end in their one-paragraph message instead of a traceback. Anything else
is a bug and keeps its traceback."""

from __future__ import annotations

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError

from fashion_transfer.params import ParameterError
from fashion_transfer.pipelines.ingestion.nodes import InputDataError

USER_ERRORS = (DatasetError, ParameterError, InputDataError)


class RunWithClearErrors(click.Command):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as error:
            raise click.ClickException(str(error)) from None


@click.group(name="fashion-transfer")
def cli() -> None:
    """Project commands."""


cli.add_command(
    RunWithClearErrors(
        name="run", params=kedro_run.params, callback=kedro_run.callback, help=kedro_run.help
    )
)
