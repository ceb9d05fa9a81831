"""After `kedro run` the process ends once the exit handlers have run, with the command's exit
code; every other command, project or exit keeps the interpreter's normal exit."""

import subprocess
import sys
import textwrap
import threading
from types import SimpleNamespace

import pytest

from fashion_transfer.framework import quick_exit

PROJECT = SimpleNamespace(package_name="fashion_transfer")


@pytest.fixture
def exits(monkeypatch) -> list[int]:
    codes: list[int] = []
    monkeypatch.setattr(quick_exit, "exit_now", codes.append)
    return codes


@pytest.mark.parametrize(("exit_code", "expected"), [(0, [0]), (None, [0]), (1, [1]), (2, [2])])
def test_a_finished_run_ends_with_the_command_s_exit_code(exits, exit_code, expected):
    quick_exit.quick_exit.after_command_run(PROJECT, ["run", "--params", "x=1"], exit_code)
    assert exits == expected


@pytest.mark.parametrize(
    ("metadata", "args", "exit_code"),
    [
        (PROJECT, ["viz", "run"], 0),  # another command
        (PROJECT, [], 0),  # `kedro` alone
        (SimpleNamespace(package_name="other_project"), ["run"], 0),
        (None, ["run"], 0),  # outside a project
        (PROJECT, ["run"], "a message for stderr"),  # sys.exit(str) prints it: normal exit
        (PROJECT, ["run"], 300),
    ],
)
def test_other_commands_projects_and_exits_keep_the_normal_exit(exits, metadata, args, exit_code):
    quick_exit.quick_exit.after_command_run(metadata, args, exit_code)
    assert exits == []


def test_a_thread_the_normal_exit_would_wait_for_keeps_it(exits):
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=False)
    worker.start()
    try:
        quick_exit.quick_exit.after_command_run(PROJECT, ["run"], 0)
    finally:
        release.set()
        worker.join()
    assert exits == []
    quick_exit.quick_exit.after_command_run(PROJECT, ["run"], 0)  # once it is gone
    assert exits == [0]


def test_exit_now_runs_the_exit_handlers_and_flushes_before_ending(tmp_path):
    written = tmp_path / "written-by-a-handler.txt"
    script = textwrap.dedent(f"""
        import atexit, sys
        atexit.register(lambda: open({str(written)!r}, "w").write("closed"))
        atexit.register(lambda: print("handler ran", file=sys.stderr))
        print("buffered output", end="")
        from fashion_transfer.framework.quick_exit import exit_now
        exit_now(3)
        print("never printed")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3
    assert result.stdout.startswith("buffered output")  # Kedro's logging notice may follow
    assert "never printed" not in result.stdout
    assert "handler ran" in result.stderr
    assert written.read_text() == "closed"
