"""Label efficiency: transfer against scratch on balanced subsets of the transfer classes."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
