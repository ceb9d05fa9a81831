"""Evaluation: test metrics, confusion matrices, learning curves and fit analysis per model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
