import random
import warnings

import pytest
import torch
from kedro.io import DatasetError

from fashion_transfer.datasets import TorchModelDataset
from fashion_transfer.model import FashionCNN, ProbabilityEnsemble


def _same_weights(a: FashionCNN, b: FashionCNN) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_round_trip_single_model(tmp_path):
    model = FashionCNN("seed", num_classes=5)
    dataset = TorchModelDataset(filepath=str(tmp_path / "models" / "m.pt"))
    dataset.save(model)
    loaded = dataset.load()
    assert isinstance(loaded, FashionCNN) and loaded.num_classes == 5
    assert _same_weights(model, loaded)
    assert not loaded.training


def test_round_trip_named_models_and_empty_dict(tmp_path):
    dataset = TorchModelDataset(filepath=str(tmp_path / "m.pt"))
    models = {"a": FashionCNN("seed", 3), "b": FashionCNN("seed", 4)}
    dataset.save(models)
    loaded = dataset.load()
    assert set(loaded) == {"a", "b"} and _same_weights(models["b"], loaded["b"])
    dataset.save({})
    assert dataset.load() == {}


def test_round_trip_ensemble(tmp_path):
    dataset = TorchModelDataset(filepath=str(tmp_path / "ensemble.pt"))
    ensemble = ProbabilityEnsemble([FashionCNN("seed", 5), FashionCNN("compact", 5)])
    dataset.save({"ensemble": ensemble})
    loaded = dataset.load()["ensemble"]
    assert isinstance(loaded, ProbabilityEnsemble) and loaded.config() == ensemble.config()
    assert _same_weights(ensemble, loaded)


def test_file_holds_tensors_not_pickled_modules(tmp_path):
    path = tmp_path / "m.pt"
    TorchModelDataset(filepath=str(path)).save(FashionCNN("seed", 5))
    payload = torch.load(path, weights_only=True)  # would refuse a pickled module
    assert payload["config"] == {"architecture": "seed", "num_classes": 5, "mirror_average": False}


def test_missing_model_says_what_to_run(tmp_path):
    dataset = TorchModelDataset(
        filepath=str(tmp_path / "pretrain.pt"),
        remedy="Train it with `kedro run --pipeline pretrain`.",
    )
    with pytest.raises(DatasetError, match="kedro run --pipeline pretrain"):
        dataset.load()


@pytest.mark.parametrize(
    "content",
    [
        b"not a checkpoint",
        bytes(range(256)) * 40,
        b"",
        # Starts like a pickle of protocol 149: PyTorch warns about its weights_only reader.
        b"\x80\x95" + random.Random(0).randbytes(4094),
    ],
    ids=["text", "byte-ramp", "empty", "unknown-pickle-protocol"],
)
def test_unreadable_file_says_what_is_wrong_and_how_to_replace_it(tmp_path, content):
    path = tmp_path / "m.pt"
    path.write_bytes(content)
    dataset = TorchModelDataset(filepath=str(path), remedy="Train it with `kedro run`.")
    with warnings.catch_warnings(record=True) as shown, pytest.raises(DatasetError) as raised:
        warnings.simplefilter("always")
        dataset.load()
    # Only the error speaks: no PyTorch warning about its reader beside it.
    assert [str(warning.message) for warning in shown] == []
    message = str(raised.value)
    assert f"{path} is not a model checkpoint written by this project" in message
    assert "Train it with `kedro run`. The new model replaces the file." in message
    # PyTorch's hint to retry with weights_only=False is dangerous advice for a foreign file.
    assert "weights_only" not in message
    assert raised.value.__cause__ is None


def test_a_pickled_module_is_refused_without_running_it(tmp_path):
    path = tmp_path / "m.pt"
    torch.save(FashionCNN("seed", 5), path)  # a whole pickled module, as some tools save
    with pytest.raises(DatasetError, match="not a model checkpoint written by this project"):
        TorchModelDataset(filepath=str(path)).load()


def test_failed_save_keeps_previous_model(tmp_path, monkeypatch):
    dataset = TorchModelDataset(filepath=str(tmp_path / "m.pt"))
    model = FashionCNN("seed", 5)
    dataset.save(model)

    def disk_full(payload, path):
        with open(path, "wb") as half_written:
            half_written.write(b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(DatasetError, match="No space left"):
        dataset.save(FashionCNN("seed", 5))
    monkeypatch.undo()
    assert _same_weights(model, dataset.load())
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_warnings_from_a_readable_file_are_passed_on(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    TorchModelDataset(filepath=str(path)).save(FashionCNN("seed", 5))
    load = torch.load

    def load_with_a_warning(*args, **kwargs):
        warnings.warn("a note from PyTorch", UserWarning, stacklevel=2)
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load_with_a_warning)
    with pytest.warns(UserWarning, match="a note from PyTorch"):
        assert isinstance(TorchModelDataset(filepath=str(path)).load(), FashionCNN)
