"""Split: one train/validation/test set per stage, labels re-indexed per stage."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
