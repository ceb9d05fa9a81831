"""Kedro dataset for FashionCNN models and ensembles (or named collections of them) as PyTorch
state dicts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.io import AbstractDataset, DatasetError

from fashion_transfer.files import write_atomically
from fashion_transfer.redact import redact

if TYPE_CHECKING:
    from fashion_transfer.model import FashionCNN, ImageClassifier

# PyTorch is imported when a model is saved or loaded: kedro-mlflow creates every dataset of
# the catalog at each run's start, also in runs that train nothing.


# The warnings of readable checkpoints, passed on once each where the filters say "default".
_REEMITTED: dict = {}


class TorchModelDataset(AbstractDataset):
    """Saves a `FashionCNN` or `ProbabilityEnsemble` (or a dict of them, by name) as its config
    and state dict, never as a pickled module, and loads it back with `weights_only=True`.
    Written whole or not at all (fashion_transfer/files.py), so a failed save never damages
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
        import torch

        from fashion_transfer.model import to_checkpoint

        if isinstance(data, dict):
            payload = {"models": {name: to_checkpoint(model) for name, model in data.items()}}
        else:
            payload = to_checkpoint(data)
        write_atomically(self._filepath, lambda path: torch.save(payload, path))

    def _load(self) -> ImageClassifier | dict[str, ImageClassifier]:
        import torch

        from fashion_transfer.model import from_checkpoint

        if self._load_from:
            return _load_registered(self._load_from)
        if not self._filepath.is_file():
            raise DatasetError(f"There is no saved model at {self._filepath}. {self._remedy}")
        # PyTorch warns while reading some damaged files (e.g. "Detected pickle protocol 149
        # ... weights_only Unpickler ..."): held back until the file is known to be readable,
        # and dropped if it is not, where the error below says what is wrong.
        with warnings.catch_warnings(record=True) as held_back:
            warnings.simplefilter("always")
            try:
                payload = torch.load(self._filepath, map_location="cpu", weights_only=True)
                if "models" in payload:
                    models = payload["models"]
                    loaded = {name: from_checkpoint(entry) for name, entry in models.items()}
                else:
                    loaded = from_checkpoint(payload)
            except Exception as error:
                # PyTorch's own message suggests weights_only=False, which would run whatever
                # code a foreign file holds: not advice to pass on.
                raise DatasetError(
                    f"{self._filepath} is not a model checkpoint written by this project (it "
                    f"is damaged, truncated or another kind of file; {type(error).__name__}), "
                    f"so it was not loaded. {self._remedy} The new model replaces the file."
                ) from None
        for warning in held_back:
            warnings.warn_explicit(
                warning.message,
                warning.category,
                warning.filename,
                warning.lineno,
                registry=_REEMITTED,
            )
        return loaded


def _load_registered(model_uri: str) -> FashionCNN:
    """The network inside a registered model (models:/NAME@ALIAS), to transfer from."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from fashion_transfer.mlflow.logged_model import read_checkpoint
    from fashion_transfer.model import ProbabilityEnsemble

    try:
        model = read_checkpoint(model_uri)
    except (MlflowException, OSError, KeyError) as error:
        raise DatasetError(
            f"Could not load the pretrained model {model_uri!r} from MLflow at "
            f"{redact(mlflow.get_tracking_uri())}: {error}. Register one with a full `kedro "
            "run`, or leave out pretrained_model_uri to use data/06_models/pretrain.pt."
        ) from error
    if isinstance(model, ProbabilityEnsemble):
        raise DatasetError(
            f"{model_uri!r} is an ensemble of trained models, not one network whose layers can "
            "be transferred. Give a pretrained model, e.g. "
            "pretrained_model_uri=models:/fashion-mnist-pretrain@champion."
        )
    return model
