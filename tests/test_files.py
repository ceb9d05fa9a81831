"""Files written whole or not at all (files.py), even when a signal comes mid-way."""

import os
import signal
import tempfile

import pytest

from fashion_transfer import files


def _left(folder):
    return sorted(path.name for path in folder.iterdir())


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary_one(tmp_path):
    target = tmp_path / "model.pt"
    files.write_whole(target, b"before")

    def fail(temporary):
        temporary.write_bytes(b"half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        files.write_atomically(target, fail)
    assert target.read_bytes() == b"before" and _left(tmp_path) == ["model.pt"]


def test_a_signal_while_the_temporary_file_is_made_leaves_nothing_behind(
    tmp_path, monkeypatch, interrupt_installed
):
    """SIGTERM right as the temporary file exists (where `kedro run` is when it logs that it
    saves a model): the run stops, the previous file stays, and no temporary file is left."""
    target = tmp_path / "model.pt"
    files.write_whole(target, b"before")
    make = tempfile.mkstemp

    def make_then_signal(*args, **kwargs):
        made = make(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return made

    monkeypatch.setattr(tempfile, "mkstemp", make_then_signal)
    with pytest.raises(KeyboardInterrupt):
        files.write_whole(target, b"after")
    assert target.read_bytes() == b"before" and _left(tmp_path) == ["model.pt"]


def test_a_secret_is_never_readable_by_others(tmp_path):
    secret = tmp_path / "pgpass"
    files.write_secret(secret, b"password")
    assert secret.stat().st_mode & 0o777 == 0o600
