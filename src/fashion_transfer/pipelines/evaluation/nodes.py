"""Test metrics, confusion matrices, learning curves and a fit verdict for every trained model.

Every node works on dicts keyed by model name (`pretrain`, `transfer` and, unless switched off,
`scratch` and `ensemble`), so the reports cover exactly the models that were trained, and
their ensemble."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from fashion_transfer.model import (
    FashionCNN,
    ImageClassifier,
    ProbabilityEnsemble,
    ServedClassifier,
)
from fashion_transfer.params import EvaluationParams, RuntimeParams
from fashion_transfer.recognition import FEATURE_SCORES
from fashion_transfer.training import embed, logits_and_embeddings, predict_proba, recognise

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


def gather_models(
    pretrain_model: FashionCNN,
    transfer_model: FashionCNN,
    baseline_models: dict[str, FashionCNN],
    ensemble_models: dict[str, ProbabilityEnsemble],
    catalogue_model: FashionCNN,
    catalogue_baselines: dict[str, FashionCNN],
) -> dict[str, tuple[ImageClassifier, str]]:
    """Every model of the run by name, with the stage whose classes it answers: `pretrain`
    (0-4), `transfer`, `scratch` and `ensemble` (5-9), `catalogue` and `catalogue_scratch`
    (all ten)."""
    models = {"pretrain": (pretrain_model, "pretrain"), "transfer": (transfer_model, "transfer")}
    models |= {
        name: (model, "transfer") for name, model in (baseline_models | ensemble_models).items()
    }
    models["catalogue"] = (catalogue_model, "catalogue")
    return models | {name: (model, "catalogue") for name, model in catalogue_baselines.items()}


def gather_stages(pretrain_data: dict, transfer_data: dict, catalogue_data: dict) -> dict:
    return {"pretrain": pretrain_data, "transfer": transfer_data, "catalogue": catalogue_data}


def calibrate(
    models: dict[str, tuple[ImageClassifier, str]],
    stages: dict[str, dict],
    evaluation_params: dict,
    runtime: dict,
) -> tuple[dict[str, ServedClassifier], dict[str, dict]]:
    """Each model as it is served (model.ServedClassifier), fitted on its stage's validation
    split after training: the temperature that calibrates its probabilities
    (calibration.py), and its out-of-distribution score with the threshold that accepts
    `recognition.accept` of the validation images (recognition.py; the feature scores' class
    means and covariance from `recognition.fit_examples` of the training split). The test split
    is not looked at."""
    from fashion_transfer.calibration import expected_calibration_error, fit_temperature

    settings = EvaluationParams.model_validate(evaluation_params).recognition
    device = RuntimeParams.model_validate(runtime).device
    served, report = {}, {}
    for name, (model, stage) in models.items():
        data = stages[stage]
        logits, features = logits_and_embeddings(model, data["val_images"], device)
        temperature = fit_temperature(logits, data["val_labels"])
        wrapped = ServedClassifier(model, settings.score)
        wrapped.temperature.fill_(temperature)
        calibrated, features = torch.from_numpy(logits / temperature), torch.from_numpy(features)
        if settings.score in FEATURE_SCORES:
            images, labels = _some(data["train_images"], data["train_labels"], settings)
            wrapped.recogniser.fit(embed(model, images, device), labels)
            wrapped.recogniser.fit_standardisation(calibrated, features)
        # The validation images' scores as the served model computes them, from the same pass.
        with torch.inference_mode():
            scores = wrapped.recogniser(calibrated, features).numpy()
        probabilities = _softmax(calibrated.numpy())
        threshold = wrapped.recogniser.set_threshold(scores, settings.accept)
        served[name] = wrapped.eval()
        report[name] = {
            "temperature": temperature,
            "val_ece_uncalibrated": expected_calibration_error(
                _softmax(logits), data["val_labels"]
            ),
            "val_ece": expected_calibration_error(probabilities, data["val_labels"]),
            "ood_score": settings.score,
            "ood_threshold": threshold,
        }
        logger.info(
            "%s: temperature %.3f; %s threshold %.4g accepts %.0f%% of validation images",
            name, temperature, settings.score, threshold, 100 * settings.accept,
        )  # fmt: skip
    return served, report


def _some(images: np.ndarray, labels: np.ndarray, settings) -> tuple[np.ndarray, np.ndarray]:
    """`settings.fit_examples` of the training images and their labels, drawn with its seed
    (all of them where there are no more)."""
    if settings.fit_examples is None or len(labels) <= settings.fit_examples:
        return images, labels
    chosen = np.random.default_rng(settings.seed).permutation(len(labels))
    chosen = np.sort(chosen[: settings.fit_examples])
    return images[chosen], labels[chosen]


def predict_test_sets(
    served_models: dict[str, ServedClassifier],
    models: dict[str, tuple[ImageClassifier, str]],
    stages: dict[str, dict],
    runtime: dict,
) -> dict[str, dict]:
    """Each model's class probabilities (calibrated, as served, and before calibration) and
    out-of-distribution scores on its stage's test set: the only use of the test set."""
    device = RuntimeParams.model_validate(runtime).device
    return {
        name: _predictions(served_models[name], stages[stage]["test_images"], stages[stage], device)
        for name, (_, stage) in models.items()
    }


def _predictions(served: ServedClassifier, images: np.ndarray, data: dict, device: str) -> dict:
    probabilities, scores = recognise(served, images, device)
    # Before calibration: the same logits, times the temperature.
    uncalibrated = _softmax(np.log(np.maximum(probabilities, 1e-38)) * float(served.temperature))
    return {
        "y_true": data["test_labels"],
        "y_pred": probabilities.argmax(axis=1),
        "probabilities": probabilities,
        "uncalibrated_probabilities": uncalibrated,
        "ood_scores": scores,
        "recognised": scores <= float(served.recogniser.threshold),
        "class_names": data["class_names"],
        "images": images,
    }


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def render_photo_sets(
    pretrain_data: dict, transfer_data: dict, catalogue_data: dict, evaluation_params: dict
) -> dict:
    """Per stage, the photo test set: `photos.per_class` of the stage's test images of each
    class (seeded), each rendered as a phone photographs an item (fashion_transfer/photos.py);
    the catalogue's is both stages' photos together. Neither training nor model selection
    ever sees them."""
    from fashion_transfer.photos import render_photos

    settings = EvaluationParams.model_validate(evaluation_params).photos
    sets = {}
    for offset, (stage, data) in enumerate(
        (("pretrain", pretrain_data), ("transfer", transfer_data))
    ):
        rng = np.random.default_rng(settings.seed)
        chosen = []
        for label in range(len(data["class_names"])):
            of_class = np.flatnonzero(data["test_labels"] == label)
            count = min(settings.per_class or len(of_class), len(of_class))
            chosen.append(np.sort(rng.choice(of_class, count, replace=False)))
        index = np.concatenate(chosen)
        # Each stage's photos from a seed of its own: the same for a stage however the
        # other stage is set.
        stage_settings = settings.model_copy(update={"seed": settings.seed + offset})
        sets[stage] = {
            "photos": render_photos(data["test_images"][index], stage_settings),
            "test_labels": data["test_labels"][index],
            "source_labels": np.asarray(data["source_classes"])[data["test_labels"][index]],
            "class_names": data["class_names"],
        }
    both = [sets["pretrain"], sets["transfer"]]
    source_labels = np.concatenate([s["source_labels"] for s in both])
    position = {label: index for index, label in enumerate(catalogue_data["source_classes"])}
    sets["catalogue"] = {
        "photos": both[0]["photos"] + both[1]["photos"],
        "test_labels": np.array([position[label] for label in source_labels]),
        "source_labels": source_labels,
        "class_names": catalogue_data["class_names"],
    }
    return sets


def see_photos(photo_sets: dict) -> dict:
    """What the models see of each photo: the served conversion (served_model/pictures.py),
    and whether it told the item apart from its background."""
    from fashion_transfer.served_model.pictures import convert_picture, open_picture

    views, converted = {}, {}
    for stage, photo_set in photo_sets.items():
        conversions = []
        for photo in photo_set["photos"]:
            if id(photo) not in converted:  # the catalogue's photos are the stages' own
                converted[id(photo)] = convert_picture(open_picture(photo))
            conversions.append(converted[id(photo)])
        views[stage] = {
            "images": np.stack([conversion.image for conversion in conversions]),
            "separated": np.array([conversion.note is None for conversion in conversions]),
        }
    return views


def predict_photo_sets(
    served_models: dict[str, ServedClassifier],
    models: dict[str, tuple[ImageClassifier, str]],
    photo_sets: dict,
    photo_views: dict,
    runtime: dict,
) -> dict[str, dict]:
    """Each model's answers for the photos of its stage, as converted."""
    device = RuntimeParams.model_validate(runtime).device
    return {
        name: _predictions(
            served_models[name], photo_views[stage]["images"], photo_sets[stage], device
        )
        | {"separated": photo_views[stage]["separated"], "stage": stage}
        for name, (_, stage) in models.items()
    }


def score_photos(photo_predictions: dict[str, dict]) -> dict[str, dict]:
    """Per model: accuracy on the photo test set, its size, the share of photos whose item
    the conversion told apart from the background, the expected calibration error of the
    confidence it serves on them (its temperature was fitted on clean validation images:
    does the confidence still mean what it says on a photo?) and the share of them it
    recognises as one of its classes (photos of garments: a refusal is a wrong refusal)."""
    from fashion_transfer.calibration import expected_calibration_error

    return {
        name: {
            "photo_accuracy": float((p["y_true"] == p["y_pred"]).mean()),
            "photo_examples": len(p["y_true"]),
            "photo_items_found": float(p["separated"].mean()),
            "photo_ece": expected_calibration_error(p["probabilities"], p["y_true"]),
            "photo_recognised": float(p["recognised"].mean()),
        }
        for name, p in photo_predictions.items()
    }


def build_outlier_sets(evaluation_params: dict) -> dict[str, np.ndarray]:
    """The pictures that are none of the ten classes (outlier_sets.py): scikit-learn's
    digits and the synthetic non-garments, each kind named."""
    from fashion_transfer import outlier_sets

    settings = EvaluationParams.model_validate(evaluation_params).recognition
    synthetic, kinds = outlier_sets.synthetic(settings.synthetic_per_kind, settings.seed)
    digits = outlier_sets.digits()
    if settings.digits is not None:
        chosen = np.random.default_rng(settings.seed).permutation(len(digits))[: settings.digits]
        digits = digits[np.sort(chosen)]
    return {"digits": digits, "synthetic": synthetic, "synthetic_kinds": kinds}


def score_recognition(
    served_models: dict[str, ServedClassifier],
    models: dict[str, tuple[ImageClassifier, str]],
    test_predictions: dict[str, dict],
    stages: dict[str, dict],
    outlier_sets: dict[str, np.ndarray],
    runtime: dict,
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per model, how well its score tells its own test images from pictures that are none
    of its classes: the other stage's test images (near: other clothes, for the five-class
    models), the digits and the synthetic non-garments (far); for each, the area under the
    ROC curve and the share accepted at the threshold fixed on validation; and the scores
    themselves, for the report."""
    from sklearn.metrics import roc_auc_score

    device = RuntimeParams.model_validate(runtime).device
    far = {name: outlier_sets[name] for name in ("digits", "synthetic")}
    other = {"pretrain": "transfer", "transfer": "pretrain"}
    metrics, scores = {}, {}
    for name, (_, stage) in models.items():
        served = served_models[name]
        own = test_predictions[name]["ood_scores"]
        sets = dict(far)
        if stage in other:
            sets[f"{other[stage]} classes"] = stages[other[stage]]["test_images"]
        threshold = float(served.recogniser.threshold)
        metrics[name] = {"test_recognised": float((own <= threshold).mean()), "sets": {}}
        scores[name] = {"test": own, "threshold": threshold}
        for set_name, images in sets.items():
            _, outside = recognise(served, images, device)
            truth = np.r_[np.zeros(len(own)), np.ones(len(outside))]
            metrics[name]["sets"][set_name] = {
                "auroc": float(roc_auc_score(truth, np.r_[own, outside])),
                "accepted": float((outside <= threshold).mean()),
                "pictures": len(outside),
            }
            scores[name][set_name] = outside
    return metrics, scores


def collect_histories(
    pretrain_history: list[dict],
    transfer_history: list[dict],
    baseline_histories: dict[str, list[dict]],
    catalogue_history: list[dict],
    catalogue_baseline_histories: dict[str, list[dict]],
) -> dict[str, list[dict]]:
    return {
        "pretrain": pretrain_history,
        "transfer": transfer_history,
        **baseline_histories,
        "catalogue": catalogue_history,
        **catalogue_baseline_histories,
    }


def assess_calibration(
    test_predictions: dict[str, dict], calibration: dict[str, dict]
) -> dict[str, dict]:
    """Per model: its temperature and the expected calibration error on the test set before
    and after calibration, with the reliability diagram's bins."""
    from fashion_transfer.calibration import reliability

    assessed = {}
    for name, p in test_predictions.items():
        before = reliability(p["uncalibrated_probabilities"], p["y_true"])
        after = reliability(p["probabilities"], p["y_true"])
        assessed[name] = {
            "temperature": calibration[name]["temperature"],
            "test_ece": after["ece"],
            "test_ece_uncalibrated": before["ece"],
            "reliability": {"calibrated": after, "uncalibrated": before},
        }
    return assessed


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
    photo_metrics: dict[str, dict],
    calibration_metrics: dict[str, dict],
    calibration: dict[str, dict],
    recognition_metrics: dict[str, dict],
) -> dict:
    """One section per model: test metrics, photo test set metrics, calibration (its
    temperature, ECE before and after), recognition (its out-of-distribution score, threshold
    and, per set of pictures that are none of its classes, AUROC and the share accepted),
    validation accuracy and, for the models that were trained (not the ensemble, which has no
    history), the fit verdict and the chosen epoch."""
    summary = {}
    for name, metrics in test_metrics.items():
        summary[name] = dict(metrics) | photo_metrics.get(name, {})
        if name in calibration_metrics:
            kept = ("temperature", "test_ece", "test_ece_uncalibrated")
            summary[name] |= {key: calibration_metrics[name][key] for key in kept}
        if name in recognition_metrics:
            summary[name] |= {
                "ood_score": calibration[name]["ood_score"],
                "ood_threshold": calibration[name]["ood_threshold"],
                "test_recognised": recognition_metrics[name]["test_recognised"],
                "ood": recognition_metrics[name]["sets"],
            }
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


def plot_photo_examples(
    photo_sets: dict, photo_predictions: dict[str, dict], evaluation_params: dict
) -> dict[str, Figure]:
    """Per model, a grid of the first photos of its photo test set: the photo, what the model
    saw (the 28x28 conversion) and its answer, green where right and red where wrong."""
    from matplotlib.figure import Figure
    from PIL import Image

    limit = EvaluationParams.model_validate(evaluation_params).photo_examples
    columns, side, gap = 4, 96, 30  # a cell: the photo and what was seen, side by side
    figures = {}
    for name, p in photo_predictions.items():
        photo_set = photo_sets[p["stage"]]
        count = min(limit, len(p["y_true"]))
        rows = max(1, -(-count // columns))
        width, height = columns * (2 * side + gap), rows * (side + gap)
        canvas = np.full((height, width, 3), 255, np.uint8)
        figure = Figure(figsize=(width / 80, height / 80 + 0.5), layout="constrained")
        ax = figure.subplots()
        for position in range(count):
            row, column = divmod(position, columns)
            top, left = row * (side + gap) + gap - 4, column * (2 * side + gap) + gap // 2
            photo = Image.open(io.BytesIO(photo_set["photos"][position])).convert("RGB")
            photo.thumbnail((side, side))
            canvas[top : top + photo.height, left : left + photo.width] = np.asarray(photo)
            seen = np.asarray(Image.fromarray(p["images"][position]).resize((side, side)))
            canvas[top : top + side, left + side : left + 2 * side] = seen[..., None]
            true, answer = (
                p["class_names"][p["y_true"][position]],
                p["class_names"][p["y_pred"][position]],
            )
            confidence = p["probabilities"][position].max()
            ax.text(
                left + side,
                top - 3,
                f"{true} -> {answer} {confidence:.0%}",
                ha="center",
                va="bottom",
                fontsize=7,
                color="green" if true == answer else "red",
            )
        ax.imshow(canvas)
        ax.set_axis_off()
        accuracy = float((p["y_true"] == p["y_pred"]).mean())
        figure.suptitle(
            f"{name}: photo test set, {accuracy:.1%} of {len(p['y_true'])} right; each photo, "
            "what the model saw, true -> answer"
        )
        figures[f"{name}.png"] = figure
    return figures


def plot_reliability(calibration_metrics: dict[str, dict]) -> dict[str, Figure]:
    """Per model, its reliability diagram on the test set: accuracy against confidence in
    equal-width bins, before and after calibration, the diagonal being a confidence that
    means what it says."""
    from matplotlib.figure import Figure

    figures = {}
    for name, assessed in calibration_metrics.items():
        figure = Figure(figsize=(5.5, 5), layout="constrained")
        ax = figure.subplots()
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
        for key, label in (("uncalibrated", "before"), ("calibrated", "after")):
            bins = assessed["reliability"][key]
            used = [i for i, count in enumerate(bins["counts"]) if count]
            ax.plot(
                [bins["confidence"][i] for i in used],
                [bins["accuracy"][i] for i in used],
                marker="o",
                label=f"{label}: ECE {bins['ece']:.2%}",
            )
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: reliability on the test set (T = {assessed['temperature']:.2f})")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        figures[f"{name}.png"] = figure
    return figures


def plot_recognition(recognition_scores: dict[str, dict]) -> dict[str, Figure]:
    """Per model, the distribution of its out-of-distribution score on its own test images
    and on each set of pictures that are none of its classes, with the threshold."""
    from matplotlib.figure import Figure

    figures = {}
    for name, scores in recognition_scores.items():
        figure = Figure(figsize=(8, 4.5), layout="constrained")
        ax = figure.subplots()
        everything = np.concatenate([v for k, v in scores.items() if k != "threshold"])
        low, high = np.quantile(everything, [0.001, 0.995])
        bins = np.linspace(low, high, 60)
        for set_name, values in scores.items():
            if set_name == "threshold":
                continue
            label = "its test images" if set_name == "test" else set_name
            ax.hist(np.clip(values, low, high), bins, density=True, alpha=0.5, label=label)
        ax.axvline(scores["threshold"], color="black", linestyle="--", label="threshold")
        ax.set_xlabel("out-of-distribution score (higher: less like its classes)")
        ax.set_ylabel("density")
        ax.set_title(f"{name}: recognised below the threshold")
        ax.legend()
        figures[f"{name}.png"] = figure
    return figures
