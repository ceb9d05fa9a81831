"""kedro-mlflow's MlflowModelRegistryDataset, with an error that says how to get the model."""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from kedro.io import DatasetError
from kedro_mlflow.io.models import MlflowModelRegistryDataset
from mlflow.exceptions import MlflowException

from fashion_transfer.redact import redact

logger = logging.getLogger(__name__)


class RegisteredModelDataset(MlflowModelRegistryDataset):
    """Loads a registered model as kedro-mlflow does; when the registry has no such model or
    alias, the error names the model URI and the store, and adds `missing_hint`."""

    def __init__(self, *, missing_hint: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self._missing_hint = missing_hint

    def _load(self) -> Any:
        try:
            model = super()._load()
        except MlflowException as error:
            raise DatasetError(
                f"The MLflow registry at {redact(mlflow.get_registry_uri())} has no "
                f"{self.model_uri} ({error.message}). {self._missing_hint}"
            ) from None
        version = mlflow.MlflowClient().get_model_version_by_alias(self.model_name, self.alias)
        logger.info(
            "Classifying with %s: version %s of %s, from run %s",
            self.model_uri,
            version.version,
            self.model_name,
            version.run_id,
        )
        return model
