"""Warnings that libraries raise about their own code, not about anything a user did: they are
for those libraries' authors, and on every `kedro` command they would bury the project's output.

`silence()` is a `kedro.init` entry point (pyproject.toml): the `kedro` command runs it before
it imports the plugins whose imports raise these warnings."""

import logging

# kedro-mlflow's KedroPipelineModel.predict has no type hints, and MLflow says so when the
# plugin is imported, under a `warnings.simplefilter("once")` of its own that outranks any
# `warnings.filterwarnings("ignore")`; it is dropped where Kedro's logging shows warnings.
LIBRARY_NOTES = ("Add type hints to the `predict` method",)


class LibraryNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(note in message for note in LIBRARY_NOTES)


def silence() -> None:
    # Kedro's logging config (conf/logging.yml) refuses filter factories; this logger is not
    # named there, so its filter outlives Kedro's reconfiguration.
    logging.getLogger("py.warnings").addFilter(LibraryNotes())
