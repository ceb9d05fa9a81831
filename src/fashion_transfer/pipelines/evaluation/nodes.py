"""Test metrics, confusion matrices, learning curves and a fit verdict for every trained model.

Every node works on dicts keyed by model name (`pretrain`, `transfer` and, unless switched off,
`scratch` and `ensemble`), so the reports cover exactly the models that were trained, and
their ensemble."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fashion_transfer.model import FashionCNN, ProbabilityEnsemble
from fashion_transfer.params import EvaluationParams, RuntimeParams
from fashion_transfer.training import predict_proba

# scikit-learn and matplotlib are imported where they are used: every `kedro` command imports
# the pipelines' nodes, and the two cost about two seconds that most commands never need.
if TYPE_CHECKING:
    from matplotlib.figure import Figure
else:
    # matplotlib is imported by the nodes that draw (it costs every kedro command seconds);
    # Kedro reads each node's type hints at start-up, so the name must resolve without it.
    Figure = object

logger = logging.getLogger(__name__)


def build_ensemble(
    transfer_model: FashionCNN,
    baseline_models: dict[str, FashionCNN],
    transfer_data: dict,
    runtime: dict,
    evaluation_params: dict,
) -> tuple[dict[str, ProbabilityEnsemble], dict[str, float]]:
    """Model `ensemble`, the mean of the transfer model's and the scratch baseline's class
    probabilities (two differently trained networks whose errors partly differ), and its
    validation accuracy, by which the registry judges it as it judges the trained models.
    Both empty with `ensemble` off or no scratch baseline."""
    from sklearn.metrics import accuracy_score

    if not EvaluationParams.model_validate(evaluation_params).ensemble:
        logger.info("No ensemble: evaluation.ensemble is false.")
        return {}, {}
    if "scratch" not in baseline_models:
        logger.info("No ensemble: it needs the scratch baseline (transfer.scratch_baseline).")
        return {}, {}
    ensemble = ProbabilityEnsemble([transfer_model, baseline_models["scratch"]])
    device = RuntimeParams.model_validate(runtime).device
    probabilities = predict_proba(ensemble, transfer_data["val_images"], device)
    val_accuracy = accuracy_score(transfer_data["val_labels"], probabilities.argmax(axis=1))
    return {"ensemble": ensemble}, {"ensemble": float(val_accuracy)}


def predict_test_sets(
    pretrain_model: FashionCNN,
    transfer_model: FashionCNN,
    baseline_models: dict[str, FashionCNN],
    ensemble_models: dict[str, ProbabilityEnsemble],
    pretrain_data: dict,
    transfer_data: dict,
    runtime: dict,
) -> dict[str, dict]:
    """Each model's class probabilities on its stage's test set: the only use of the test set."""
    device = RuntimeParams.model_validate(runtime).device
    jobs = {
        "pretrain": (pretrain_model, pretrain_data),
        "transfer": (transfer_model, transfer_data),
    }
    jobs |= {
        name: (model, transfer_data) for name, model in (baseline_models | ensemble_models).items()
    }
    predictions = {}
    for name, (model, data) in jobs.items():
        probabilities = predict_proba(model, data["test_images"], device)
        predictions[name] = {
            "y_true": data["test_labels"],
            "y_pred": probabilities.argmax(axis=1),
            "probabilities": probabilities,
            "class_names": data["class_names"],
            "images": data["test_images"],
        }
    return predictions


def collect_histories(
    pretrain_history: list[dict],
    transfer_history: list[dict],
    baseline_histories: dict[str, list[dict]],
) -> dict[str, list[dict]]:
    return {"pretrain": pretrain_history, "transfer": transfer_history, **baseline_histories}


def compute_test_metrics(
    predictions: dict[str, dict],
) -> tuple[dict[str, dict], dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Accuracy and per-class/macro precision, recall and F1 (scikit-learn), the classification
    report as a table and the confusion matrix (rows: true class, columns: predicted)."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    metrics, reports, confusions = {}, {}, {}
    for name, p in predictions.items():
        names = p["class_names"]
        labels = list(range(len(names)))
        report = classification_report(
            p["y_true"],
            p["y_pred"],
            labels=labels,
            target_names=names,
            output_dict=True,
            zero_division=0,
        )
        metrics[name] = {
            "test_accuracy": float(accuracy_score(p["y_true"], p["y_pred"])),
            "macro_precision": report["macro avg"]["precision"],
            "macro_recall": report["macro avg"]["recall"],
            "macro_f1": report["macro avg"]["f1-score"],
            "test_examples": len(p["y_true"]),
            "per_class": {
                class_name: {
                    "precision": report[class_name]["precision"],
                    "recall": report[class_name]["recall"],
                    "f1": report[class_name]["f1-score"],
                }
                for class_name in names
            },
        }
        reports[name] = pd.DataFrame(report).T.rename_axis("class").reset_index()
        matrix = confusion_matrix(p["y_true"], p["y_pred"], labels=labels)
        confusions[name] = pd.DataFrame(
            matrix, index=pd.Index(names, name="true \\ predicted"), columns=names
        ).reset_index()
    return metrics, reports, confusions


def analyse_fit(histories: dict[str, list[dict]], evaluation_params: dict) -> dict[str, dict]:
    """Per model: the train/validation gap at the chosen (best validation) epoch, the trend of
    the validation loss over the last epochs, and a verdict by the documented thresholds."""
    thresholds = EvaluationParams.model_validate(evaluation_params).fit_analysis
    return {name: _fit_analysis(history, thresholds) for name, history in histories.items()}


def _fit_analysis(history: list[dict], thresholds) -> dict:
    frame = pd.DataFrame(history)
    best = frame.loc[frame["val_accuracy"].idxmax()]
    accuracy_gap = float(best["train_accuracy"] - best["val_accuracy"])
    min_val_loss = float(frame["val_loss"].min())
    final_val_loss = float(frame["val_loss"].iloc[-1])
    val_loss_rise = (final_val_loss - min_val_loss) / min_val_loss if min_val_loss > 0 else 0.0
    window = frame.tail(thresholds.trend_epochs)
    slope = float(np.polyfit(window["epoch"], window["val_loss"], 1)[0]) if len(window) > 1 else 0.0
    mean_loss = float(window["val_loss"].mean())
    relative_slope = slope / mean_loss if mean_loss > 0 else 0.0
    trend = "rising" if relative_slope > 0.01 else "falling" if relative_slope < -0.01 else "flat"

    if best["train_accuracy"] < thresholds.underfit_train_accuracy:
        verdict = "underfitting"
        reason = (
            f"train accuracy {best['train_accuracy']:.4f} at the chosen epoch is below "
            f"{thresholds.underfit_train_accuracy}"
        )
    elif accuracy_gap > thresholds.overfit_gap:
        verdict = "overfitting"
        reason = f"train/val accuracy gap {accuracy_gap:.4f} exceeds {thresholds.overfit_gap}"
    elif val_loss_rise > thresholds.overfit_val_loss_rise:
        verdict = "overfitting"
        reason = (
            f"validation loss ended {val_loss_rise:.1%} above its minimum "
            f"(limit {thresholds.overfit_val_loss_rise:.0%}); the chosen epoch predates it"
        )
    else:
        verdict = "good fit"
        reason = "train accuracy high, small train/val gap, validation loss did not drift up"
    return {
        "best_epoch": int(best["epoch"]),
        "epochs": len(frame),
        "train_accuracy": float(best["train_accuracy"]),
        "val_accuracy": float(best["val_accuracy"]),
        "accuracy_gap": accuracy_gap,
        "loss_gap": float(best["val_loss"] - best["train_loss"]),
        "min_val_loss": min_val_loss,
        "final_val_loss": final_val_loss,
        "val_loss_rise": val_loss_rise,
        "val_loss_trend": trend,
        "val_loss_slope": slope,
        "verdict": verdict,
        "reason": reason,
    }


def summarise_metrics(
    test_metrics: dict[str, dict],
    fit_analysis: dict[str, dict],
    ensemble_val_accuracy: dict[str, float],
) -> dict:
    """One section per model: test metrics, validation accuracy and, for the models that were
    trained (not the ensemble, which has no history), the fit verdict and the chosen epoch."""
    summary = {}
    for name, metrics in test_metrics.items():
        summary[name] = dict(metrics)
        if name in ensemble_val_accuracy:
            summary[name]["val_accuracy"] = ensemble_val_accuracy[name]
        if name in fit_analysis:
            analysis = fit_analysis[name]
            summary[name] |= {
                "fit_verdict": analysis["verdict"],
                "best_epoch": analysis["best_epoch"],
                "val_accuracy": analysis["val_accuracy"],
            }
    return summary


def plot_confusion_matrices(predictions: dict[str, dict]) -> dict[str, Figure]:
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    figures = {}
    for name, p in predictions.items():
        figure = Figure(figsize=(7, 6), layout="constrained")
        ax = figure.subplots()
        ConfusionMatrixDisplay.from_predictions(
            p["y_true"],
            p["y_pred"],
            labels=list(range(len(p["class_names"]))),
            display_labels=p["class_names"],
            ax=ax,
            cmap="Blues",
            colorbar=False,
            xticks_rotation=45,
            values_format="d",
        )
        ax.set_title(f"{name}: confusion matrix on the test set")
        figures[f"{name}.png"] = figure
    return figures


def plot_learning_curves(
    histories: dict[str, list[dict]], fit_analysis: dict[str, dict]
) -> dict[str, Figure]:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figures = {}
    for name, history in histories.items():
        frame = pd.DataFrame(history)
        analysis = fit_analysis[name]
        figure = Figure(figsize=(10, 4), layout="constrained")
        loss_ax, accuracy_ax = figure.subplots(1, 2)
        # Both losses are the plain cross-entropy (training minimises it with label
        # smoothing, which would sit well above the validation loss); the training figures
        # are measured on the training images as trained, augmented where the recipe says.
        for ax, metric, label in (
            (loss_ax, "loss", "cross-entropy (no label smoothing)"),
            (accuracy_ax, "accuracy", "accuracy"),
        ):
            ax.plot(frame["epoch"], frame[f"train_{metric}"], marker=".", label="train")
            ax.plot(frame["epoch"], frame[f"val_{metric}"], marker=".", label="validation")
            ax.axvline(analysis["best_epoch"], color="grey", linestyle="--", label="chosen epoch")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend()
        figure.suptitle(f"{name}: {analysis['verdict']} ({analysis['reason']})", fontsize=9)
        figures[f"{name}.png"] = figure
    return figures


def plot_misclassified(predictions: dict[str, dict], evaluation_params: dict) -> dict[str, Figure]:
    """A grid of the first misclassified test images of each model, titled true -> predicted.
    The images are tiled into one picture on one axes: a subplot each would take seconds."""
    from matplotlib.figure import Figure

    limit = EvaluationParams.model_validate(evaluation_params).misclassified_examples
    columns, tile = 6, 28 + 14  # each image with room for its title above it
    figures = {}
    for name, p in predictions.items():
        wrong = np.flatnonzero(p["y_true"] != p["y_pred"])[:limit]
        rows = max(1, -(-len(wrong) // columns))
        canvas = np.zeros((rows * tile, columns * tile), np.uint8)
        figure = Figure(figsize=(columns * 1.9, rows * 2.1 + 0.6), layout="constrained")
        ax = figure.subplots()
        for position, index in enumerate(wrong):
            row, column = divmod(position, columns)
            top, left = row * tile + 12, column * tile + 7
            canvas[top : top + 28, left : left + 28] = p["images"][index]
            true, predicted = (
                p["class_names"][p["y_true"][index]],
                p["class_names"][p["y_pred"][index]],
            )
            ax.text(left + 14, top - 1, f"{true}\n-> {predicted}", ha="center", va="bottom",
                    fontsize=8)  # fmt: skip
        ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=255)
        ax.set_axis_off()
        figure.suptitle(
            f"{name}: {len(wrong)} of {int((p['y_true'] != p['y_pred']).sum())} misclassified "
            "test images (true -> predicted)"
        )
        figures[f"{name}.png"] = figure
    return figures
