"""Kept only as the import path of models registered up to commit e8a0639 (their code file
imports `fashion_transfer.registry.FashionClassifier`); the class is in mlflow/legacy.py."""

from fashion_transfer.mlflow.legacy import FashionClassifier

__all__ = ["FashionClassifier"]
