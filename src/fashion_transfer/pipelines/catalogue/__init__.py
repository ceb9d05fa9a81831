"""Catalogue: the model a person meets, of all ten classes, made of the experiment's parts (the
pretrained network's frozen features under a new head, then its last blocks fine-tuned, as the
transfer stage does), and, if asked, the same network trained from scratch on the same budget."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
