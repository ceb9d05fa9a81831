import pytest
from kedro.io import DatasetError

from fashion_transfer.datasets import RegisteredModelDataset


def test_missing_registered_model_names_the_uri_the_store_and_the_fix(tmp_path, monkeypatch):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    dataset = RegisteredModelDataset(
        model_name="fashion-missing", alias="champion", missing_hint="Run `kedro run` first."
    )
    with pytest.raises(DatasetError) as raised:
        dataset.load()
    message = str(raised.value)
    assert f"The MLflow registry at {store} has no models:/fashion-missing@champion" in message
    assert "fashion-missing not found" in message
    assert message.endswith("Run `kedro run` first.")
