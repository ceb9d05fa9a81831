"""Files written whole or not at all: into a temporary file beside the target, renamed over it
only once complete, so that a crash, a Ctrl-C or a full disk leaves the previous file as it
was and no partial one behind. A secret file is readable by its owner only from the moment
it exists (the temporary file is made 0600)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from fashion_transfer.framework import interrupt


def write_atomically(path: Path, write: Callable[[Path], None], mode: int = 0o644) -> None:
    """Call `write(temporary_path)`, then rename the temporary file to `path` (with `mode`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path: Path | None = None
    try:
        # Ctrl-C and SIGTERM wait while the temporary file is made and named: a
        # KeyboardInterrupt between its creation and the name that the clean-up below needs
        # left it behind.
        with interrupt.held():
            handle, temp_name = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".part"
            )
            temp_path = Path(temp_name)
        os.close(handle)  # made 0600 by mkstemp
        write(temp_path)
        if mode != 0o600:
            temp_path.chmod(mode & ~_umask())
        os.replace(temp_path, path)
    finally:
        if temp_path is not None:
            temp_path.unlink(missing_ok=True)


def write_whole(path: Path, data: bytes) -> None:
    write_atomically(path, lambda temporary: temporary.write_bytes(data))


def write_secret(path: Path, data: bytes) -> None:
    """`data` in `path`, mode 0600 from the start: never readable by others, even briefly."""
    write_atomically(path, lambda temporary: temporary.write_bytes(data), mode=0o600)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
