"""Python's cyclic garbage collector over a `kedro run`: paused while the command starts, then
given back with what the start-up loaded frozen out of its sight (`gc.freeze()`).

Starting a run imports Kedro, kedro-mlflow, MLflow, PyTorch, scikit-learn and matplotlib:
hundreds of thousands of objects that live as long as the process. Each time the heap has
grown by a quarter, the collector walks all of them in a full collection, and frees next to
nothing: on a 2-core AMD EPYC a small run made 11 full collections, 2.4 s in all,
1.3 s of them before the pipeline started and 0.65 s in one during the registration
(docs/benchmarks.md). Paused while the command starts and frozen once the pipeline is about
to run, they no longer count; the collector works as usual on everything made after. What
the pause leaves unfreed for good: the reference cycles the imports make, some 10,000-25,000
objects (a few MB).

`pause_for_run` is a `kedro.init` entry point (pyproject.toml), which the `kedro` command calls
before it loads its plugins; it pauses for `kedro run` in this project only, and the project's
hook `resume`s once the MLflow run has started (framework/hooks.py). A Kedro session started
elsewhere (a notebook, a test) is left alone."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from kedro.utils import find_kedro_project

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: Kedro's own dependency
    import tomli as tomllib

PACKAGE = "fashion_transfer"

_paused = False


def pause_for_run() -> None:
    """Pause the collector when the command is `kedro run` in this project."""
    global _paused
    if sys.argv[1:2] == ["run"] and gc.isenabled() and _in_this_project(Path.cwd()):
        gc.disable()
        _paused = True


def _in_this_project(folder: Path) -> bool:
    """Whether `folder` is in a Kedro project (found as the `kedro` command finds it) whose
    package is this one."""
    root = find_kedro_project(folder)
    if root is None:
        return False
    try:
        settings = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return settings.get("tool", {}).get("kedro", {}).get("package_name") == PACKAGE


def resume() -> None:
    """Collect again, after moving every object alive now into the permanent generation that
    collections skip; nothing to do where `pause_for_run` did not pause."""
    global _paused
    if not _paused:
        return
    _paused = False
    gc.freeze()
    gc.enable()
