"""Kedro dataset for FashionCNN models and ensembles (or named collections of them) as PyTorch
state dicts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset, DatasetError

from fashion_transfer.model import FashionCNN, ImageClassifier, build_model


class TorchModelDataset(AbstractDataset):
    """Saves a `FashionCNN` or `ProbabilityEnsemble` (or a dict of them, by name) as its config
    and state dict, never as a pickled module, and loads it back with `weights_only=True`.
    Writes go to a temporary file that is renamed into place, so a failed save never damages
    the previous model. `remedy` tells the user how to make the model when the file is missing
    or unreadable."""

    def __init__(
        self,
        *,
        filepath: str,
        remedy: str = "",
        load_from: str | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._filepath = Path(filepath)
        self._remedy = remedy
        self._load_from = load_from
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "load_from": self._load_from}

    def _exists(self) -> bool:
        # A registered model is looked up when loaded, with its own error if it is missing.
        return bool(self._load_from) or self._filepath.is_file()

    def _save(self, data: ImageClassifier | dict[str, ImageClassifier]) -> None:
        if isinstance(data, dict):
            payload = {"models": {name: _to_payload(model) for name, model in data.items()}}
        else:
            payload = _to_payload(data)
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            dir=self._filepath.parent, prefix=f".{self._filepath.name}.", suffix=".part"
        )
        os.close(handle)
        try:
            torch.save(payload, temp_name)
            os.replace(temp_name, self._filepath)
        finally:
            Path(temp_name).unlink(missing_ok=True)

    def _load(self) -> ImageClassifier | dict[str, ImageClassifier]:
        if self._load_from:
            return _load_registered(self._load_from)
        if not self._filepath.is_file():
            raise DatasetError(f"There is no saved model at {self._filepath}. {self._remedy}")
        try:
            payload = torch.load(self._filepath, map_location="cpu", weights_only=True)
            if "models" in payload:
                return {name: _from_payload(entry) for name, entry in payload["models"].items()}
            return _from_payload(payload)
        except Exception as error:
            # PyTorch's own message suggests weights_only=False, which would run whatever code
            # a foreign file holds: not advice to pass on.
            raise DatasetError(
                f"{self._filepath} is not a model checkpoint written by this project (it is "
                f"damaged, truncated or another kind of file; {type(error).__name__}), so it "
                f"was not loaded. {self._remedy} The new model replaces the file."
            ) from None


def _load_registered(model_uri: str) -> FashionCNN:
    """The FashionCNN inside a model logged by fashion_transfer.registry (models:/NAME@ALIAS)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from fashion_transfer.registry import CHECKPOINT

    try:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
        payload = torch.load(
            folder / "artifacts" / f"{CHECKPOINT}.pt", map_location="cpu", weights_only=True
        )
    except (MlflowException, OSError) as error:
        raise DatasetError(
            f"Could not load the pretrained model {model_uri!r} from MLflow at "
            f"{mlflow.get_tracking_uri()}: {error}. Register one with a full `kedro run`, or "
            "leave out pretrained_model_uri to use data/06_models/pretrain.pt."
        ) from error
    if "members" in payload["config"]:
        raise DatasetError(
            f"{model_uri!r} is an ensemble of trained models, not one network whose layers can "
            "be transferred. Give a pretrained model, e.g. "
            "pretrained_model_uri=models:/fashion-mnist-pretrain@champion."
        )
    return _from_payload(payload)


def _to_payload(model: ImageClassifier) -> dict:
    return {"config": model.config(), "state_dict": model.state_dict()}


def _from_payload(payload: dict) -> ImageClassifier:
    model = build_model(payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()
