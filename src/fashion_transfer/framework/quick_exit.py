"""The end of a `kedro run` without the interpreter's teardown.

When a run has finished, its models, reports and MLflow records are written and closed, and
the exit handlers (MLflow's, logging's) have run, the Python interpreter still frees every
module and object it loaded before the process ends: with PyTorch, MLflow, ONNX, matplotlib and
Kedro loaded, 2-3 seconds of every run's wall time on a 2-core CPU (docs/benchmarks.md), with
nothing left to write. So after this project's `kedro run` the process ends as soon as the exit
handlers are done, with the exit code the command gave.

`quick_exit` is a Kedro CLI hook (the `kedro.cli_hooks` entry point in pyproject.toml), the
last one called after a command. It keeps the normal exit for any other command or project,
for an exit code that is not a number, and while a thread the normal exit would wait for
is still running."""

from __future__ import annotations

import atexit
import os
import sys
import threading

from kedro.framework.cli.hooks import cli_hook_impl

PACKAGE = "fashion_transfer"


def _threads_to_wait_for() -> list[threading.Thread]:
    """Threads the normal exit joins: non-daemon ones, and a thread pool's workers (its exit
    handler lets them finish their queue)."""
    return [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread()
        and thread.is_alive()
        and (not thread.daemon or thread.name.startswith("ThreadPoolExecutor"))
    ]


def exit_now(code: int) -> None:
    """Run the exit handlers, flush the standard streams and end the process with `code`."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # closed, replaced or gone
            pass
    os._exit(code)


class QuickExit:
    @cli_hook_impl(trylast=True)
    def after_command_run(self, project_metadata, command_args: list[str], exit_code) -> None:
        if getattr(project_metadata, "package_name", None) != PACKAGE:
            return
        if command_args[:1] != ["run"]:
            return
        code = 0 if exit_code is None else exit_code
        if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 255:
            return
        if _threads_to_wait_for() or not hasattr(atexit, "_run_exitfuncs"):
            return
        exit_now(code)


quick_exit = QuickExit()
