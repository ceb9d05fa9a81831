"""The set-up the end-to-end tests share: one scratch copy of the project, and one small
end-to-end run in it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.e2e.helpers import (
    CHROMIUM,
    QUICK_TUNE,
    SMALL_SLICE,
    Result,
    copy_project,
    kedro,
    require,
)


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A scratch copy of the project that the end-to-end tests share (helpers.py)."""
    return copy_project(tmp_path_factory.mktemp("project"))


class FirstRun(NamedTuple):
    failed: Result  # the transfer run without a pretrained model
    result: Result  # the full run
    data: Path  # a copy of the models, model outputs and reports the full run wrote


@pytest.fixture(scope="session")
def first_run(project, tmp_path_factory) -> FirstRun:
    """The one small end-to-end run that the end-to-end tests share: a transfer run with no
    pretrained model fails first; then a full run on a small slice succeeds. What the full run
    wrote is copied aside, as later tests run the project again."""
    failed = kedro(project, "run", "--pipeline", "transfer", "--params", SMALL_SLICE)
    result = kedro(project, "run", "--params", SMALL_SLICE)
    assert result.returncode == 0, result.output[-5000:]
    assert len(failed.runs) == 1 and len(result.runs) == 1
    data = tmp_path_factory.mktemp("first-run") / "data"
    for layer in ("06_models", "07_model_output", "08_reporting"):
        shutil.copytree(project / "data" / layer, data / layer)
    return FirstRun(failed, result, data)


@pytest.fixture(scope="session")
def first_study(project, first_run) -> Result:
    """A two-trial tuning study of the transfer recipe after the small run, in its project
    (the tuning tests and the notebook's tuning cell read it)."""
    result = kedro(
        project, "run", "--pipeline", "tune", "--params", f"tune.n_trials=2,{QUICK_TUNE}"
    )
    assert result.returncode == 0, result.output[-5000:]
    return result


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, driven by Playwright (no browser download); the checks skip where
    it is missing, except in CI."""
    require(CHROMIUM, "the browser checks", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
