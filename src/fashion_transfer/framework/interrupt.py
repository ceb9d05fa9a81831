"""Ctrl-C and SIGTERM, never lost. Python raises KeyboardInterrupt wherever the main thread is
when a signal arrives; if that is a finaliser (`__del__` of a closed connection, say), Python
prints "Exception ignored in ..." and goes on as if nothing happened. So the handler also
remembers the signal, and the run checks at each step it takes (node, registration) and stops
there.

A step that must not be cut in two (a file made and named, a model version logged to the
registry) runs under `held()`: a signal that comes meanwhile is acted on as the step ends."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_requested = threading.Event()
_holding = 0  # how many `held()` blocks the main thread is in


def install() -> None:
    """Handle Ctrl-C (SIGINT) and SIGTERM the same way, from now on."""
    _requested.clear()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _handler)


def _handler(signum, frame) -> None:
    _requested.set()
    if not _holding:
        raise KeyboardInterrupt


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
