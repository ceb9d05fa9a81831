"""Transfer: frozen pretrained features and a new head on the transfer classes, and a from-scratch baseline."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
