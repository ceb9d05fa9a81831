"""Ctrl-C and SIGTERM, never lost. Python raises KeyboardInterrupt wherever the main thread is
when a signal arrives; if that is a finaliser (`__del__` of a closed connection, say), Python
prints "Exception ignored in ..." and goes on as if nothing happened. So the handler also
remembers the signal, and the run checks at each step it takes (node, registration) and stops
there.

A step that must not be cut in two (a file made and named, a model version logged to the
registry) runs under `held()`: a signal that comes meanwhile is acted on as the step ends.
Nor is a database call cut in two (MLflow's and Optuna's SQL stores, through SQLAlchemy): a
KeyboardInterrupt raised inside one can leave SQLite's write lock taken, and the run then cannot
mark itself KILLED ("database is locked"). A signal that comes during one is remembered and the
run's next check acts on it (the next node, epoch of a trial or registered version); a second
signal meanwhile interrupts at once, for a call that does not return."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_requested = threading.Event()
_holding = 0  # how many `held()` blocks the main thread is in
# Modules whose code a KeyboardInterrupt must not cut into: the SQL layer of MLflow and Optuna.
_DATABASE_CODE = (
    "sqlalchemy",
    "sqlite3",
    "alembic",
    "psycopg2",
    "mlflow.store.db",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "optuna.storages._rdb",
)


def install() -> None:
    """Handle Ctrl-C (SIGINT) and SIGTERM the same way, from now on."""
    _requested.clear()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _handler)


def _handler(signum, frame) -> None:
    again = _requested.is_set()
    _requested.set()
    if _holding or (not again and _in_database_call(frame)):
        return
    raise KeyboardInterrupt


def _in_database_call(frame) -> bool:
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if any(module == name or module.startswith(name + ".") for name in _DATABASE_CODE):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Run the block whole: a Ctrl-C or SIGTERM that comes meanwhile is remembered by the
    project's handler (`install()`) and interrupts as the block ends, unless the block ends in
    an error of its own, which goes on. Without the project's handler, signals act as usual."""
    global _holding
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
    if not _holding:
        check()


def requested() -> bool:
    """Whether a signal arrived since `install()`."""
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if a signal arrived, even one whose exception was lost."""
    if _requested.is_set():
        raise KeyboardInterrupt
