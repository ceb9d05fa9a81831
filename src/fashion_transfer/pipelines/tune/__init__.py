"""Tune: an Optuna study over one stage's training recipe (not part of the default run)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
