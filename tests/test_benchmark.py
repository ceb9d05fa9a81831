"""benchmarks/benchmark.py's split of a run's wall time into parts, from the run's stamps."""

import importlib.util
import subprocess
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "benchmark.py"
spec = importlib.util.spec_from_file_location("benchmark", PATH)
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)

GROUPS = {
    "data": {"split_stages"},
    "pretrain": {"pretrain"},
    "evaluation": {"predict_test_sets"},
    "tracking: metrics": {"test_metric_values"},
}


def test_every_second_of_the_run_is_in_one_part():
    stamps = {
        "pipeline_started": 10.0,
        "run_started": 12.0,  # MLflow run opened and tagged
        "nodes": [
            ["split_stages", 13.0, 13.5],  # 0.5 s of parameters logged before the node
            ["pretrain", 15.0, 16.0],
            ["predict_test_sets", 30.0, 30.0],
            ["test_metric_values", 33.0, 33.0],
        ],
        "last_saved": 34.0,
        "pipeline_finished": 34.0,
        "spans": [
            ["onnx export", 35.0, 36.0],
            ["parity check", 36.0, 36.5],
            ["registration", 34.5, 40.0],
        ],
        "run_finished": 41.0,
    }
    parts, nodes = benchmark.split_run(stamps, started=0.0, finished=42.0, groups=GROUPS)
    assert nodes == {
        "split_stages": 1.5,
        "pretrain": 14.0,
        "predict_test_sets": 3.0,
        "test_metric_values": 1.0,
    }
    assert parts["start-up"] == 10.0 + 1.0  # the process, then Kedro's runner
    assert parts["tracking: run start"] == 2.0
    assert parts["tracking: parameters"] == 0.5 + 1.0
    assert (parts["data"], parts["pretrain"], parts["evaluation"]) == (1.5, 14.0, 3.0)
    assert parts["tracking: metrics"] == 1.0
    assert parts["tracking: ONNX export"] == 1.0
    assert parts["tracking: ONNX parity check"] == 0.5
    assert parts["tracking: registration"] == 5.5 - 1.0 - 0.5
    assert parts["tracking: run end"] == 42.0 - 34.0 - 5.5
    assert sum(parts.values()) == pytest.approx(42.0)


def test_stamps_of_a_project_from_before_the_timing_hooks_give_the_same_parts():
    stamps = {
        "pipeline_started": 10.0,
        "nodes": [["split_stages", 13.0], ["pretrain", 15.0], ["test_metric_values", 30.0]],
        "last_saved": 31.0,
        "run_finished": 39.0,
    }
    parts, _ = benchmark.split_run(stamps, started=0.0, finished=40.0, groups=GROUPS)
    assert parts["start-up"] == 13.0 and parts["tracking: parameters"] == 0.0
    assert parts["tracking: run end"] == 9.0  # registration included
    assert sum(parts.values()) == pytest.approx(40.0)


def test_a_result_names_the_code_by_its_commit_never_by_its_folder(tmp_path):
    project = PATH.parents[1]
    version = benchmark.code_version(project)
    assert str(project) not in version
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    assert head.startswith(version.split("-")[0])
    assert benchmark.code_version(tmp_path) == "not a git checkout"


def test_the_loop_benchmark_runs_the_default_recipe_like_for_like(stage_data):
    from fashion_transfer.params import validate_parameters
    from tests.test_params import project_parameters

    params = validate_parameters(project_parameters())  # outlier exposure on, as in `default`
    small = {
        **stage_data[0],
        "train_images": stage_data[0]["train_images"][:256],
        "train_labels": stage_data[0]["train_labels"][:256],
    }
    result = benchmark.loop_benchmark(small, params, repeats=1)
    assert result["train_examples"] == len(small["train_images"])
    assert len(result["project_epoch_seconds"]) == len(result["plain_epoch_seconds"]) == 1
