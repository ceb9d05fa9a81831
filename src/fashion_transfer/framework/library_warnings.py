"""Warnings that libraries raise about their own code, not about anything a user did: they are
for those libraries' authors, and on every command they would bury the project's output. The
one place the project drops warnings.

`silence()` is a `kedro.init` entry point (pyproject.toml): the `kedro` command runs it before
it imports the plugins whose imports raise these warnings; settings.py runs it for a Kedro
session started elsewhere (a notebook, a test)."""

import logging
import os
import warnings

# kedro-mlflow's KedroPipelineModel.predict has no type hints, and MLflow says so when the
# plugin is imported, under a `warnings.simplefilter("once")` of its own that outranks any
# `warnings.filterwarnings("ignore")`; it is dropped where Kedro's logging shows warnings.
LIBRARY_NOTES = ("Add type hints to the `predict` method",)


class LibraryNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(note in message for note in LIBRARY_NOTES)


def silence() -> None:
    # MLflow draws a progress bar for each internal download of a model it logs (to check
    # the input example): lines of noise in a run's log, for files of a few megabytes.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Kedro's config loader and kedro-mlflow still register their resolvers with OmegaConf's
    # deprecated register_new_resolver().
    warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")
    # MLflow's server module (imported by its auth client) uses Starlette's deprecated WSGI
    # middleware.
    warnings.filterwarnings("ignore", message=r"starlette\.middleware\.wsgi is deprecated")
    # Optuna warns on every use of a feature it calls experimental (heartbeats, its
    # matplotlib plots): documented features the project relies on. Matched by its message,
    # so that no command has to import Optuna to drop it.
    warnings.filterwarnings("ignore", message=r".* is (an )?experimental")
    # Kedro's logging config (conf/logging.yml) refuses filter factories; this logger is not
    # named there, so its filter outlives Kedro's reconfiguration.
    notes = logging.getLogger("py.warnings")
    if not any(isinstance(existing, LibraryNotes) for existing in notes.filters):
        notes.addFilter(LibraryNotes())
