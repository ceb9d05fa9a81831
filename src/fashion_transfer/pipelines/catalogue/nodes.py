"""Train the catalogue model, of all ten classes, from the pretrained network; and, with
catalogue.scratch_baseline, the same network from scratch with the same budget."""

from __future__ import annotations

from fashion_transfer.model import FashionCNN
from fashion_transfer.pipelines.transfer.nodes import train_scratch_baseline, transfer


def train_catalogue(
    pretrain_model: FashionCNN, catalogue_data: dict, training_params: dict, runtime: dict
) -> tuple[FashionCNN, list[dict]]:
    """The transfer recipe of the catalogue (parameters_catalogue.yml) on all ten classes."""
    return transfer(pretrain_model, catalogue_data, training_params, runtime, name="catalogue")


def train_catalogue_scratch(
    pretrain_model: FashionCNN, catalogue_data: dict, training_params: dict, runtime: dict
) -> tuple[dict[str, FashionCNN], dict[str, list[dict]]]:
    """`catalogue_scratch`: what transfer buys for the whole catalogue. Empty when off."""
    models, histories = train_scratch_baseline(
        pretrain_model, catalogue_data, training_params, runtime, name="catalogue_scratch"
    )
    return models, histories
