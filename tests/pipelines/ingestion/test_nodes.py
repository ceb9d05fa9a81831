import numpy as np
import pytest

from fashion_transfer.pipelines.ingestion.nodes import assemble_dataset


def test_assembles_the_four_arrays(fashion_mnist):
    assembled = assemble_dataset(**fashion_mnist)
    assert set(assembled) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert assembled["train_images"].shape == (600, 28, 28)


def test_count_mismatch_names_the_split(fashion_mnist):
    fashion_mnist["test_labels"] = fashion_mnist["test_labels"][:-1]
    with pytest.raises(ValueError, match="test split has 200 images but 199 labels"):
        assemble_dataset(**fashion_mnist)


def test_labels_outside_0_9(fashion_mnist):
    fashion_mnist["train_labels"] = fashion_mnist["train_labels"].copy()
    fashion_mnist["train_labels"][[3, 7]] = [12, 200]
    with pytest.raises(ValueError, match=r"labels \[12, 200\]"):
        assemble_dataset(**fashion_mnist)


def test_pipeline_reads_idx_files_end_to_end(idx_folder, tmp_path, monkeypatch):
    from kedro.io import DataCatalog
    from kedro.runner import SequentialRunner

    from fashion_transfer.datasets import IDXDataset
    from fashion_transfer.pipelines.ingestion import create_pipeline

    monkeypatch.setenv("FASHION_MNIST_SOURCE", str(idx_folder))
    raw = tmp_path / "raw"
    catalog = DataCatalog(
        {
            f"{split}_{kind}": IDXDataset(
                filepath=str(raw / f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"),
                kind=kind,
            )
            for split, prefix in (("train", "train"), ("test", "t10k"))
            for kind in ("images", "labels")
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    data = catalog["fashion_mnist"].load()
    assert data["train_images"].shape == (600, 28, 28) and data["test_labels"].shape == (200,)
    assert np.array_equal(np.bincount(data["train_labels"]), np.full(10, 60))
