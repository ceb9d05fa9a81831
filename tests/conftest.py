"""Shared test helpers: tiny synthetic Fashion-MNIST-shaped data that a CNN can learn."""

from __future__ import annotations

import gzip
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fashion_transfer.datasets.idx_dataset import MAGIC
from fashion_transfer.framework import interrupt
from fashion_transfer.training import resolve_precision

# The web app's libraries stay on this machine, as the Makefile has them (set before any test
# imports Gradio or its client, which read these once).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# The longest test modules first (seconds each on the 2-core AVX512-BF16 machine, `pytest
# --durations`), so that the two workers (pyproject.toml's addopts) take them at the start and
# the short ones even out the end: the end-to-end runs of tests/e2e/test_run.py (~300 s), the
# team stack's (~170 s and ~80 s), the web app's (~90 s with the small run), tuning (~65 s).
LONGEST_FIRST = (
    "tests/e2e/test_run.py",
    "tests/e2e/test_team.py",
    "tests/e2e/test_team_network.py",
    "tests/e2e/test_app.py",
    "tests/e2e/test_tune.py",
    "tests/e2e/test_fresh_environment.py",
    "tests/e2e/test_stores.py",
    "tests/e2e/test_browser.py",
    "tests/e2e/test_notebook.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a module, and among the others, as collected


def idx_bytes(array: np.ndarray, kind: str) -> bytes:
    header = MAGIC[kind].to_bytes(4, "big") + b"".join(
        size.to_bytes(4, "big") for size in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, kind: str, compress: bool = True) -> Path:
    raw = idx_bytes(array, kind)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def synthetic_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Noise plus a bright 6x6 square whose position encodes the label: easy to learn."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 4)
        images[i, 2 + 6 * row : 8 + 6 * row, 2 + 6 * col : 8 + 6 * col] = 255
    return images


@pytest.fixture
def interrupt_installed():
    """The project's Ctrl-C and SIGTERM handler (framework/interrupt.py), then the previous
    handlers back."""
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    interrupt.install()
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)
    interrupt._requested.clear()


@pytest.fixture
def fashion_mnist() -> dict[str, np.ndarray]:
    """In-memory dataset as the ingestion pipeline returns it: 60 train and 20 test per class."""
    train_labels = np.repeat(np.arange(10, dtype=np.uint8), 60)
    test_labels = np.repeat(np.arange(10, dtype=np.uint8), 20)
    return {
        "train_images": synthetic_images(train_labels, seed=1),
        "train_labels": train_labels,
        "test_images": synthetic_images(test_labels, seed=2),
        "test_labels": test_labels,
    }


@pytest.fixture
def idx_folder(tmp_path, fashion_mnist) -> Path:
    """A folder holding the four standard files, written from the synthetic dataset."""
    folder = tmp_path / "source"
    folder.mkdir()
    for prefix, split in (("train", "train"), ("t10k", "test")):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte.gz", fashion_mnist[f"{split}_images"], "images"
        )
        write_idx(
            folder / f"{prefix}-labels-idx1-ubyte.gz", fashion_mnist[f"{split}_labels"], "labels"
        )
    return folder


SPLIT_PARAMS = {
    "pretrain_classes": [0, 1, 2, 3, 4],
    "transfer_classes": [5, 6, 7, 8, 9],
    "validation_fraction": 0.2,
    "seed": 0,
    "max_examples_per_stage": None,
}
TRAINING_PARAMS = {
    "epochs": 3,
    "batch_size": 32,
    "optimizer": "adam",
    "learning_rate": 0.003,
    "weight_decay": 0.0,
    "seed": 0,
}
# Tests that compare numbers train in float32, the same on every CPU; the bfloat16 path has
# its own tests (see NATIVE_BFLOAT16).
RUNTIME_PARAMS = {"device": "cpu", "num_threads": None, "precision": "float32"}
BFLOAT16_RUNTIME_PARAMS = {**RUNTIME_PARAMS, "precision": "bfloat16"}
# bfloat16 results differ between CPUs that compute it natively and CPUs that emulate it (and
# emulation is about ten times slower), so tests of bfloat16 figures run only where `auto`
# would choose it, as a user's run would.
NATIVE_BFLOAT16 = pytest.mark.skipif(
    resolve_precision("auto", torch.device("cpu")) != "bfloat16",
    reason="this CPU has no native bfloat16 (AVX512-BF16 or AMX): runs train in float32 here",
)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_parameters(**runtime_params) -> dict:
    """The parameters in conf/base, as `kedro run --params ...` sees them."""
    from kedro.config import OmegaConfigLoader

    from fashion_transfer.framework.config import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        runtime_params=runtime_params,
        **{**CONFIG_LOADER_ARGS, "default_run_env": "base"},
    )
    return loader["parameters"]


def run_pipeline(pipeline, **inputs) -> DataCatalog:
    """Run `pipeline` on in-memory inputs (datasets and `params:` entries); return the catalog,
    holding every output, intermediate ones included."""

    class KeptMemoryDataset(MemoryDataset):
        def _release(self) -> None:  # the runner frees intermediate data; tests read it
            pass

    catalog = DataCatalog({name: MemoryDataset(value) for name, value in inputs.items()})
    for name in pipeline.all_outputs():
        catalog[name] = KeptMemoryDataset()
    SequentialRunner().run(pipeline, catalog)
    return catalog


@pytest.fixture
def stage_data(fashion_mnist):
    from fashion_transfer.pipelines.split.nodes import split_stages

    return split_stages(fashion_mnist, SPLIT_PARAMS)
