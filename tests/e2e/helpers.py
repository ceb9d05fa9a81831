"""End-to-end helpers: a scratch copy of the project (its own data/ and MLflow store in
mlruns/), `kedro run` in it as a user runs it, and the MLflow runs each command adds, found by
their ids, never by their position."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import mlflow

from tests.conftest import PROJECT_ROOT

# Few photos and synthetic non-garments in the evaluation's reports, for every test run,
FEW_REPORT_IMAGES = (
    "evaluation.photos.per_class=10,evaluation.recognition.synthetic_per_kind=20,"
    "evaluation.recognition.digits=200,"
    # and few outlier pictures for each stage's outlier exposure
    + ",".join(
        f"{stage}.outlier_exposure.{source}=200"
        for stage in ("pretrain", "transfer", "catalogue")
        for source in ("photo_crops", "shuffled", "edges")
    )
)
SMALL_SLICE = (
    "split.max_examples_per_stage=1500,pretrain.epochs=2,transfer.epochs=2,"
    f"transfer.fine_tune_epochs=1,catalogue.epochs=1,catalogue.fine_tune_epochs=1,{FEW_REPORT_IMAGES}"
)
# Tuning trials of one or two head epochs and at most one fine-tuning epoch.
QUICK_TUNE = (
    "tune.search_space.transfer.epochs.low=1,tune.search_space.transfer.epochs.high=2,"
    "tune.search_space.transfer.fine_tune_epochs.high=1"
)
CHROMIUM = shutil.which("chromium")
SCREENSHOTS = PROJECT_ROOT / "test-screenshots"  # of pages whose checks failed
MODELS = (
    "fashion-mnist-catalogue",
    "fashion-mnist-pretrain",
    "fashion-mnist-transfer",
    "fashion-mnist-ensemble",
)
EXPERIMENT = "fashion-mnist-transfer"


def _data_source() -> str | None:
    """FASHION_MNIST_SOURCE as given (made absolute), else the project's own raw files, else
    nothing: the run then downloads from the official mirror, as a user's would."""
    source = os.environ.get("FASHION_MNIST_SOURCE")
    if source:
        return source if "://" in source else str(Path(source).resolve())
    raw = PROJECT_ROOT / "data" / "01_raw"
    return str(raw) if (raw / "train-images-idx3-ubyte.gz").exists() else None


def copy_project(root: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(
        PROJECT_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", ".telemetry", "Makefile"):
        shutil.copy(PROJECT_ROOT / name, root)
    return root


def make(target: str, **variables) -> list[str]:
    """`make TARGET NAME=value ...` as the README has users type it, run in a scratch copy:
    the project's environment is this test run's (its install step taken as done), and make
    does not echo the command it runs."""
    venv = Path(sys.prefix)
    settings = [f"{name}={value}" for name, value in variables.items()]
    quiet = ["-s", "--no-print-directory"]
    return ["make", *quiet, "-o", f"{venv}/.installed", target, f"VENV={venv}", *settings]


def without_make(output: str) -> str:
    """What the program said, less make's own "make: *** [Makefile:N: target] Error 1"
    ("make[1]: ***" when the tests themselves run under `make test`)."""
    return "".join(
        line
        for line in output.splitlines(keepends=True)
        if not re.match(r"make(\[\d+\])?: \*\*\*", line)
    )


def kedro_env() -> dict[str, str]:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        env.pop(variable, None)  # the scratch project keeps its own store
    env.pop("FASHION_MNIST_SOURCE", None)
    if source := _data_source():
        env["FASHION_MNIST_SOURCE"] = source
    env["COLUMNS"] = "250"  # log lines unwrapped, so that tests can wait for one
    return env


def store(project: Path) -> str:
    return f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"


def client_of(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=store(project), registry_uri=store(project))


def run_ids(project: Path) -> set[str]:
    if not (project / "mlruns" / "mlflow.db").exists():
        return set()
    client = client_of(project)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return set()
    return {run.info.run_id for run in client.search_runs([experiment.experiment_id])}


@dataclass
class Result:
    returncode: int
    output: str
    runs: list  # the MLflow runs this command added, oldest first


def kedro(project: Path, *args: str, timeout: float = 600, env: dict | None = None) -> Result:
    before = run_ids(project)
    completed = subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=env or kedro_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(
        completed.returncode, completed.stdout + completed.stderr, new_runs(project, before)
    )


def start_kedro(
    project: Path, *args: str, env: dict | None = None, own_group: bool = False
) -> subprocess.Popen:
    """`kedro ARGS` in the background, its output (stdout and stderr) to read line by line.
    Ctrl-C reaches it as it reaches a terminal user's run (a shell starts background jobs
    with Ctrl-C ignored, and children inherit that); `own_group` lets a test kill it with
    everything it started."""
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=env or kedro_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        start_new_session=own_group,
    )


def outputs_of(processes: list[subprocess.Popen], timeout: float = 540) -> list[str]:
    """Wait for every process and return their outputs; none is left running.

    Every pipe is read at once, each in its own thread: read one after another, a process
    that waits for a later one (two runs in one project take turns) would wait forever while
    the later one blocks on its full, unread pipe. `timeout` (seconds, for all together) is
    below the tests' own limit, so a stuck process fails with what each one printed."""
    with ThreadPoolExecutor(len(processes)) as pool:
        reads = [pool.submit(process.communicate) for process in processes]
        try:
            done, stuck = wait(reads, timeout=timeout)
            if stuck:
                for process in processes:
                    process.kill()
                printed = "\n".join(
                    f"--- process {number} ({'stuck' if read in stuck else 'done'}) ---\n"
                    f"{read.result()[0][-2000:]}"
                    for number, read in enumerate(reads)
                )
                raise AssertionError(f"still running after {timeout} s:\n{printed}")
            return [read.result()[0] for read in reads]
        finally:
            for process in processes:
                process.kill()


def require(program: str | None, what: str, package: str) -> None:
    """Skip where a system program is missing, with the reason; in CI (which installs it in
    .ci/run) fail instead, so that the checks never silently stop running there."""
    import pytest

    if program is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run {what}: .ci/run installs Debian's {package}")
        pytest.skip(f"{what} need Debian's {package} (apt-get install {package})")


def new_runs(project: Path, before: set[str]) -> list:
    client = client_of(project)
    runs = [client.get_run(run_id) for run_id in run_ids(project) - before]
    return sorted(runs, key=lambda run: run.info.start_time)


def versions_of(project: Path, run) -> dict[str, object]:
    """The model versions a run registered, by registered model name."""
    found = client_of(project).search_model_versions(f"run_id='{run.info.run_id}'")
    return {version.name: version for version in found}


def version_counts(project: Path) -> dict[str, int]:
    client = client_of(project)
    return {name: len(client.search_model_versions(f"name='{name}'")) for name in MODELS}


def assert_user_error(result: Result, *expected: str) -> None:
    """A failed command that ends in a one-paragraph `Error:`, never a traceback."""
    assert result.returncode != 0
    for text in expected:
        assert text in result.output, result.output[-3000:]
    assert "Traceback" not in result.output and "╭─" not in result.output


@contextlib.contextmanager
def page_of(browser, name: str) -> Iterator:
    """A page; if a check on it fails, its screenshot is kept and named in the failure."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        yield page
    except Exception as error:
        SCREENSHOTS.mkdir(exist_ok=True)
        shot = SCREENSHOTS / f"{name}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shot), full_page=True)
        raise AssertionError(f"{error}\nScreenshot of the page: {shot}") from error
    finally:
        page.close()
