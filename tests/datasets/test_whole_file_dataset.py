"""A file written whole or not at all (fashion_transfer/datasets/whole_file_dataset.py)."""

import errno
import json

import pytest
from kedro.io import DatasetError

from fashion_transfer.cli import _disk_full
from fashion_transfer.datasets import WholeFileDataset


def test_it_saves_loads_and_previews_as_the_dataset_it_wraps(tmp_path):
    path = tmp_path / "metrics.json"
    dataset = WholeFileDataset(
        filepath=str(path), dataset={"type": "json.JSONDataset", "save_args": {"indent": 2}}
    )
    assert not dataset.exists()
    dataset.save({"transfer": {"test_accuracy": 0.98}})
    assert dataset.exists() and dataset.load() == {"transfer": {"test_accuracy": 0.98}}
    assert path.read_text().startswith("{\n  ")  # the wrapped dataset's own save_args
    assert json.loads(dataset.preview()) == {"transfer": {"test_accuracy": 0.98}}  # kedro-viz
    assert list(tmp_path.iterdir()) == [path]


def test_a_full_disk_keeps_the_previous_file_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    dataset = WholeFileDataset(filepath=str(path), dataset="json.JSONDataset")
    dataset.save({"run": 1})

    def half_written(data, file, **kwargs):
        file.write('{"run": 2, "trans')
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(json, "dump", half_written)
    with pytest.raises(DatasetError) as error:
        dataset.save({"run": 2, "transfer": {}})
    assert json.loads(path.read_text()) == {"run": 1}  # the previous file, whole
    assert list(tmp_path.iterdir()) == [path]  # and no partial file beside it
    message = _disk_full(error.value)
    assert message.startswith("The disk is full") and "intact" in message
