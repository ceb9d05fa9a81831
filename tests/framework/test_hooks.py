"""The project's data/ lock: one writer at a time, readers (tuning, label efficiency) together,
and a reader holds the lock only until it has loaded what it reads."""

from types import SimpleNamespace

import pytest
from filelock import Timeout
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.pipeline import Pipeline, node

from fashion_transfer.framework.hooks import RunLockHooks

READS = Pipeline([node(lambda data: data, "transfer_data", "report", name="study")])


def _hooks(tmp_path) -> RunLockHooks:
    hooks = RunLockHooks()
    hooks.after_context_created(SimpleNamespace(project_path=tmp_path))
    return hooks


def _catalog() -> DataCatalog:
    return DataCatalog({"transfer_data": MemoryDataset([1, 2, 3])})


def test_readers_run_together_and_a_writer_waits_only_until_they_have_loaded(tmp_path):
    readers = [_hooks(tmp_path), _hooks(tmp_path)]
    for reader in readers:  # both get the lock at once: neither waits for the other
        reader.before_pipeline_run({"pipeline_names": ["tune"]}, READS, _catalog())
    writer = _hooks(tmp_path)
    with pytest.raises(Timeout):
        writer.lock.acquire_write(timeout=0)
    for reader in readers:
        reader.after_dataset_loaded("transfer_data", [1, 2, 3], None)
    writer.lock.acquire_write(timeout=0)  # free as soon as the readers hold their data
    with pytest.raises(Timeout):
        readers[0].lock.acquire_read(timeout=0)  # and now the writer has it alone
    writer.after_pipeline_run({}, READS, _catalog())
    readers[0].lock.acquire_read(timeout=0)
    readers[0].lock.release()


def test_a_reader_of_data_that_no_run_has_made_says_what_to_run(tmp_path):
    reader = _hooks(tmp_path)
    empty = DataCatalog({"transfer_data": MemoryDataset()})
    with pytest.raises(DatasetError, match="tune pipeline reads transfer_data.*Run `kedro run`"):
        reader.before_pipeline_run({"pipeline_names": ["tune"]}, READS, empty)
