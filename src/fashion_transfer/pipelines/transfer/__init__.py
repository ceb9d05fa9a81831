"""Transfer: frozen pretrained features, a new head on the transfer classes; a scratch baseline."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
