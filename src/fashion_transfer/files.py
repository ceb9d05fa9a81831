"""Files written whole or not at all: into a temporary file beside the target, renamed over it
only once complete, so that a crash, a Ctrl-C or a full disk leaves the previous file as it
was and no partial one behind. A secret file is readable by its owner only from the moment
it exists (the temporary file is made 0600)."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], None], mode: int = 0o644) -> None:
    """Call `write(temporary_path)`, then rename the temporary file to `path` (with `mode`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path: Path | None = None
    # Ctrl-C and SIGTERM wait while the temporary file is made and named: a KeyboardInterrupt
    # between its creation and the name that the clean-up below needs left it behind.
    held = _hold_signals()
    try:
        handle, temp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".part"
        )
        temp_path = Path(temp_name)
        _release_signals(held)
        os.close(handle)  # made 0600 by mkstemp
        write(temp_path)
        if mode != 0o600:
            temp_path.chmod(mode & ~_umask())
        os.replace(temp_path, path)
    finally:
        if temp_path is not None:
            temp_path.unlink(missing_ok=True)
        _release_signals(held)


_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _hold_signals() -> set | None:
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


def _release_signals(held: set | None) -> None:
    """Put back the signal mask `_hold_signals` found (a signal that came meanwhile is
    delivered now); again after the first time, it changes nothing."""
    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def write_whole(path: Path, data: bytes) -> None:
    write_atomically(path, lambda temporary: temporary.write_bytes(data))


def write_secret(path: Path, data: bytes) -> None:
    """`data` in `path`, mode 0600 from the start: never readable by others, even briefly."""
    write_atomically(path, lambda temporary: temporary.write_bytes(data), mode=0o600)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
