"""Ctrl-C and SIGTERM, never lost. Python raises KeyboardInterrupt wherever the main thread is
when a signal arrives; if that is a finaliser (`__del__` of a closed connection, say), Python
prints "Exception ignored in ..." and goes on as if nothing happened. So the handler also
remembers the signal, and the run checks at each step it takes (node, registration) and stops
there."""

from __future__ import annotations

import signal
import threading

_requested = threading.Event()


def install() -> None:
    """Handle Ctrl-C (SIGINT) and SIGTERM the same way, from now on."""
    _requested.clear()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _handler)


def _handler(signum, frame) -> None:
    _requested.set()
    raise KeyboardInterrupt


def requested() -> bool:
    """Whether a signal arrived since `install()`."""
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if a signal arrived, even one whose exception was lost."""
    if _requested.is_set():
        raise KeyboardInterrupt
