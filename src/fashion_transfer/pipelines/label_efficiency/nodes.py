"""How many labels pretraining saves: the transfer recipe and the same network from scratch,
trained on balanced, seeded subsets of the transfer classes' training split (the validation
and test splits stay whole), under the same budget of optimiser steps."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fashion_transfer.errors import ParameterError
from fashion_transfer.model import FashionCNN
from fashion_transfer.params import (
    LabelEfficiencyParams,
    RuntimeParams,
    SplitParams,
    TransferParams,
    with_values,
    without_pipeline_extras,
)
from fashion_transfer.pipelines.transfer.nodes import (
    frozen_features,
    train_scratch_baseline,
    transfer,
)
from fashion_transfer.training import predict_proba

if TYPE_CHECKING:  # matplotlib is imported by the node that draws, as in evaluation/nodes.py
    from matplotlib.figure import Figure
else:
    Figure = object

logger = logging.getLogger(__name__)

SCRATCH = "scratch"


def balanced_subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Indices of `per_class` examples of each class, drawn with `seed` (all with None)."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == label), per_class, replace=False)
        for label in np.unique(labels)
    ]
    return np.sort(np.concatenate(chosen))


def check_sizes(sizes: list[int | None], labels: np.ndarray, class_names: list[str]) -> None:
    """A size larger than a class has examples is an error, not a silent cap."""
    counts = np.bincount(labels, minlength=len(class_names))
    smallest = int(counts.min())
    too_large = [size for size in sizes if size is not None and size > smallest]
    if too_large:
        name = class_names[int(counts.argmin())]
        raise ParameterError(
            [
                f"label_efficiency.labels_per_class: {too_large} asks for more examples per "
                f"class than the training split holds ({smallest} of {name}); use at most "
                f"{smallest}, or `all`"
            ]
        )


def compare_arms(
    pretrain_model: FashionCNN,
    transfer_data: dict,
    study_params: dict,
    transfer_params: dict,
    runtime: dict,
) -> pd.DataFrame:
    """For each size and seed: each transfer recipe of the study, from the pretrained model,
    and the same network from scratch, on one balanced subset. Every arm trains for its
    recipe's epochs, each of at least `min_epoch_images` images (a small subset is cycled),
    keeps its best validation epoch and is scored once on the test split."""
    study = LabelEfficiencyParams.model_validate(study_params)
    # The study measures accuracy by labels: every arm trains without outlier exposure and
    # without training photos (more labelled images).
    transfer_params = without_pipeline_extras(transfer_params)
    labels = transfer_data["train_labels"]
    check_sizes(study.sizes(), labels, transfer_data["class_names"])
    recipes = {
        name: with_values(transfer_params, {**changes, "scratch_baseline": False})
        for name, changes in study.transfer_recipes.items()
    }
    scratch_recipe = {**transfer_params, "scratch_baseline": True}
    blocks = {TransferParams.model_validate(r).fine_tune_blocks for r in recipes.values()}
    features = frozen_features(pretrain_model, transfer_data, runtime, blocks)
    rows = []
    for per_class in study.sizes():
        for seed in study.seeds:
            rows += _one_subset(
                pretrain_model,
                transfer_data,
                features,
                balanced_subset(labels, per_class, seed),
                per_class,
                seed,
                recipes,
                scratch_recipe,
                study.min_epoch_images,
                runtime,
            )
    return pd.DataFrame(rows)


def _one_subset(
    pretrain_model: FashionCNN,
    data: dict,
    features: dict,
    index: np.ndarray,
    per_class: int | None,
    seed: int,
    recipes: dict[str, dict],
    scratch_recipe: dict,
    min_epoch_images: int,
    runtime: dict,
) -> list[dict]:
    subset = {
        **data,
        "train_images": data["train_images"][index],
        "train_labels": data["train_labels"][index],
    }
    # The subset's rows of the frozen features, computed once for the whole split.
    cache = {
        key: {"train_images": split["train_images"][index], "val_images": split["val_images"]}
        for key, split in features.items()
    }
    training = {"seed": seed, "min_epoch_images": min_epoch_images}
    device = RuntimeParams.model_validate(runtime).device
    rows = []
    for arm in [*recipes, SCRATCH]:
        started = time.perf_counter()
        if arm == SCRATCH:
            recipe = with_values(scratch_recipe, training)
            models, histories = train_scratch_baseline(pretrain_model, subset, recipe, runtime)
            model, history = models[SCRATCH], histories[SCRATCH]
        else:
            recipe = with_values(recipes[arm], training)
            model, history = transfer(pretrain_model, subset, recipe, runtime, cache)
        seconds = time.perf_counter() - started
        predicted = predict_proba(model, data["test_images"], device).argmax(axis=1)
        row = {
            "labels_per_class": per_class or "all",
            "images_per_class": len(index) // len(data["class_names"]),
            "seed": seed,
            "arm": arm,
            "val_accuracy": max(r["val_accuracy"] for r in history),
            "test_accuracy": float((predicted == data["test_labels"]).mean()),
            "epochs": len(history),
            "seconds": seconds,
        }
        logger.info(
            "Label efficiency, %s labels per class, seed %d, %s: validation %.4f, test %.4f "
            "(%.0f s)",
            row["labels_per_class"],
            seed,
            arm,
            row["val_accuracy"],
            row["test_accuracy"],
            seconds,
        )
        rows.append(row)
    return rows


def summarise(table: pd.DataFrame) -> tuple[pd.DataFrame, dict, dict]:
    """Per arm and size: mean, min and max test accuracy over the seeds; where each transfer
    recipe meets scratch, and the labels it saves for scratch's accuracy at each size; and
    MLflow metrics per arm with step = labels per class."""
    summary = (
        table.rename(columns={"images_per_class": "per_class"})
        .groupby(["arm", "per_class"], sort=True)
        .agg(
            labels_per_class=("labels_per_class", "first"),
            seeds=("seed", "count"),
            val_accuracy=("val_accuracy", "mean"),
            test_accuracy=("test_accuracy", "mean"),
            test_min=("test_accuracy", "min"),
            test_max=("test_accuracy", "max"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    scratch = summary[summary["arm"] == SCRATCH]
    findings = {}
    for arm in sorted(set(summary["arm"]) - {SCRATCH}):
        ours = summary[summary["arm"] == arm]
        findings[arm] = _savings(ours, scratch)
    metrics = {}
    for arm, group in summary.groupby("arm"):
        for key in ("test_accuracy", "test_min", "test_max", "val_accuracy"):
            metrics[f"label_efficiency/{arm}/{key}"] = [
                {"step": int(row.per_class), "value": float(getattr(row, key))}
                for row in group.itertuples()
            ]
    return summary, findings, metrics


def _savings(ours: pd.DataFrame, scratch: pd.DataFrame) -> dict:
    """Where transfer's mean curve meets scratch's (the first size at which scratch is at
    least as accurate), and, for each scratch size, the labels transfer needs for the same
    mean accuracy (interpolated on the log scale of sizes)."""
    merged = ours.merge(scratch, on="per_class", suffixes=("", "_scratch"))
    ahead = merged["test_accuracy"] - merged["test_accuracy_scratch"]
    caught_up = merged[ahead <= 0]
    equivalents = {}
    x, y = np.log(ours["per_class"].to_numpy()), ours["test_accuracy"].to_numpy()
    for row in scratch.itertuples():
        reached = np.flatnonzero(y >= row.test_accuracy)
        if not len(reached):
            continue
        i = reached[0]
        if i == 0:  # already at the smallest size studied: fewer might do as well
            needed = float(ours["per_class"].iloc[0])
        else:  # linear in log(size) between the two sizes around the crossing
            t = (row.test_accuracy - y[i - 1]) / (y[i] - y[i - 1])
            needed = float(np.exp(x[i - 1] + t * (x[i] - x[i - 1])))
        equivalents[int(row.per_class)] = {
            "scratch_test_accuracy": float(row.test_accuracy),
            "transfer_labels_per_class": round(needed, 1),
            "labels_saved_factor": round(row.per_class / needed, 2),
            "at_most": bool(i == 0),  # true: transfer needs this many or fewer
        }
    return {
        "lead_in_points": {
            int(size): round(100 * float(gap), 2)
            for size, gap in zip(merged["per_class"], ahead, strict=True)
        },
        "scratch_catches_up_at": (None if caught_up.empty else int(caught_up["per_class"].iloc[0])),
        "labels_for_scratch_accuracy": equivalents,
    }


def plot(summary: pd.DataFrame, split_params: dict) -> Figure:
    """Test accuracy against labels per class (log axis): each arm's mean over the seeds,
    with the band from its worst to its best seed."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    classes = SplitParams.model_validate(split_params).transfer_classes
    figure = Figure(figsize=(8, 5), layout="constrained")
    ax = figure.subplots()
    for arm, group in summary.groupby("arm", sort=False):
        line = ax.plot(group["per_class"], 100 * group["test_accuracy"], marker="o", label=arm)
        ax.fill_between(
            group["per_class"],
            100 * group["test_min"],
            100 * group["test_max"],
            color=line[0].get_color(),
            alpha=0.2,
        )
    ax.set_xscale("log")
    sizes = sorted(summary["per_class"].unique())
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    labels = dict(zip(summary["per_class"], summary["labels_per_class"], strict=False))
    ax.set_xticklabels([str(labels[size]) for size in sizes])
    ax.set_xlabel("labelled training images per class (log scale)")
    ax.set_ylabel(f"test accuracy on classes {', '.join(map(str, classes))} (%)")
    ax.set_title("Label efficiency: mean over seeds, band from worst to best seed")
    ax.grid(alpha=0.3)
    ax.legend()
    return figure
