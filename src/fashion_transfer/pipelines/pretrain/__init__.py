"""Pretrain: the CNN on the pretrain classes (0-4 by default)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
