"""What a person sees, checked in a real browser: `kedro viz build` and the MLflow UI on the
small run's project copy (tests/e2e/helpers.py), served on 127.0.0.1 and driven with Playwright and
Debian's Chromium (no browser download). CI installs Chromium (.ci/run); elsewhere the
browser checks skip with the reason. A failed check keeps a screenshot in test-screenshots/."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fashion_transfer.programs.processes import free_port, start_server, stop_server, wait_until_up
from tests.e2e.helpers import EXPERIMENT, client_of, kedro, kedro_env, make, page_of

DEFAULT_NODES = (
    "assemble_dataset",
    "split_stages",
    "pretrain",
    "transfer",
    "train_scratch_baseline",
    "summarise_metrics",
    "plan_registration",
)


@contextlib.contextmanager
def served(
    command: Callable[[int], list[str]], cwd: Path, log: Path, ready_path: str, env=None
) -> Iterator[str]:
    """The server that `command(port)` starts, on a free port, until the block ends."""
    port = free_port()
    server = start_server(command(port), log, env or kedro_env(), cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server, 120, log, path=ready_path)
        yield url
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def viz_build(project, first_run):
    result = kedro(project, "viz", "build", "--include-previews", timeout=300)
    assert result.returncode == 0, result.output[-3000:]
    return project / "build"


def test_kedro_viz_build_renders_the_default_pipeline(viz_build):
    assert (viz_build / "index.html").is_file()
    graph = json.loads((viz_build / "api" / "main").read_text())
    names = {node["name"] for node in graph["nodes"]}
    assert set(DEFAULT_NODES) <= names
    tags = {tag["name"] for tag in graph["tags"]}
    assert {"data", "pretrain", "transfer", "evaluation", "registry"} <= tags


def test_kedro_viz_shows_the_flowchart_and_the_metrics_preview(
    browser, viz_build, project, tmp_path
):
    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(viz_build),
            str(port),
        ]

    metrics = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
    with (
        served(command, project, tmp_path / "viz.log", "/") as url,
        page_of(browser, "kedro-viz") as page,
    ):
        page.goto(url)
        nodes = page.locator("g.pipeline-node")
        nodes.filter(has_text="summarise_metrics").first.wait_for(timeout=60_000)
        shown = set(page.locator("g.pipeline-node text").all_text_contents())
        assert set(DEFAULT_NODES) <= shown, sorted(shown)
        page.locator("g.pipeline-node--data").filter(
            has=page.get_by_text("metrics", exact=True)
        ).first.click()
        panel = page.locator(".pipeline-metadata").first
        panel.get_by_text('"transfer"').first.wait_for(timeout=30_000)
        preview = panel.inner_text()
        assert f'"test_accuracy":{metrics["transfer"]["test_accuracy"]}' in preview


def test_the_mlflow_ui_lists_the_run_its_artifacts_and_the_champion(
    browser, project, first_run, tmp_path
):
    run = first_run.result.runs[0]
    client = client_of(project)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    accuracy = run.data.metrics["transfer/test_accuracy"]
    log = tmp_path / "mlflow.log"
    with served(lambda port: make("mlflow-ui", PORT=port), project, log, "/health") as url:
        runs_page = f"{url}/#/experiments/{experiment}/runs"
        assert f"Runs of this project: {runs_page}\n" in log.read_text()
        with page_of(browser, "mlflow-runs") as page:
            page.goto(runs_page)
            name = run.data.tags["mlflow.runName"]
            page.get_by_text(name[:20]).first.wait_for(timeout=60_000)
            page.get_by_role("button", name="Columns").click()
            page.get_by_placeholder("Search columns").fill("transfer/test_accuracy")
            page.get_by_text("transfer/test_accuracy", exact=True).first.click()
            page.keyboard.press("Escape")
            header = page.get_by_role("columnheader", name="transfer/test_accuracy")
            header.first.wait_for(timeout=30_000)
            table = page.locator("body").inner_text()
            assert shows(table, accuracy), (accuracy, table[-2000:])

        with page_of(browser, "mlflow-artifact") as page:
            page.goto(f"{url}/#/experiments/{experiment}/runs/{run.info.run_id}/artifacts")
            for folder in ("reports", "confusion_matrix_plots", "transfer.png"):
                page.get_by_text(folder, exact=True).first.click()
            page.get_by_text("reports/confusion_matrix_plots/transfer.png").first.wait_for()
            image = page.locator("img[src^='blob:']").first  # the PNG, fetched from the server
            image.wait_for(timeout=30_000)
            page.wait_for_function(
                "() => [...document.images].some(i => i.src.startsWith('blob:') && "
                "i.complete && i.naturalWidth > 0)"
            )

        with page_of(browser, "mlflow-models") as page:
            page.goto(f"{url}/#/models")
            row = page.get_by_role("row").filter(has_text="fashion-mnist-transfer")
            row.first.wait_for(timeout=60_000)
            assert "champion" in row.first.inner_text()


def shows(text: str, value: float) -> bool:
    """Whether `text` shows `value` as the MLflow UI rounds it: at least three decimals, or
    the value exactly (0.9 for 0.9, never for 0.91)."""
    for shown in re.findall(r"\d+\.\d+", text):
        decimals = len(shown.split(".")[1])
        if abs(float(shown) - value) <= 0.5 * 10**-decimals + 1e-12 and (
            decimals >= 3 or float(shown) == value
        ):
            return True
    return False
