"""Predict: classify a folder of images with the champion model from the MLflow registry."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
