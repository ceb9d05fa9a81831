"""Ingestion: the four Fashion-MNIST IDX files into one validated in-memory dataset."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
