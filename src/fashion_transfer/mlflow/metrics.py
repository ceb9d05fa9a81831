"""Shape training histories and test metrics as kedro-mlflow metric datasets expect them:
{metric name: [{"step": epoch, "value": v}, ...]}. Names group by model in the MLflow UI
(`pretrain/val_accuracy`, `transfer/test_macro_f1`, `scratch/test_recall/Ankle boot`)."""

from __future__ import annotations

# train_loss is the plain cross-entropy on the training images, comparable with val_loss;
# train_objective is what training minimised (with label smoothing).
HISTORY_KEYS = (
    "train_loss",
    "train_objective",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
)


def epoch_metrics(**histories: list[dict]) -> dict[str, list[dict]]:
    """Per-epoch metrics of each named model, step = epoch."""
    return {
        f"{model}/{key}": [{"step": row["epoch"], "value": row[key]} for row in history]
        for model, history in histories.items()
        for key in HISTORY_KEYS
    }


def transfer_stage_epoch_metrics(
    transfer_history: list[dict], baseline_histories: dict[str, list[dict]]
) -> dict[str, list[dict]]:
    return epoch_metrics(transfer=transfer_history, **baseline_histories)


def catalogue_epoch_metrics(
    catalogue_history: list[dict], catalogue_baseline_histories: dict[str, list[dict]]
) -> dict[str, list[dict]]:
    return epoch_metrics(catalogue=catalogue_history, **catalogue_baseline_histories)


def final_metric_values(metrics: dict[str, dict]) -> dict[str, dict]:
    """Final test metrics of each model: accuracy, macro and per-class precision and recall,
    accuracy on the photo test set, calibration error and out-of-distribution figures;
    and the validation accuracy of a model that was not trained (the ensemble), whose
    `val_accuracy` is no per-epoch series."""
    values = {}
    for model, section in metrics.items():
        if "best_epoch" not in section:
            values[f"{model}/val_accuracy"] = section["val_accuracy"]
        for key in ("test_accuracy", "macro_precision", "macro_recall", "macro_f1"):
            name = key if key.startswith("test_") else f"test_{key}"
            values[f"{model}/{name}"] = section[key]
        for key in (
            "photo_accuracy",
            "photo_items_found",
            "photo_ece",
            "photo_recognised",
            "test_ece",
            "test_ece_uncalibrated",
            "temperature",
            "test_recognised",
        ):
            if key in section:
                values[f"{model}/{key}"] = section[key]
        for set_name, figures in section.get("ood", {}).items():
            values[f"{model}/ood_auroc/{set_name}"] = figures["auroc"]
            values[f"{model}/ood_accepted/{set_name}"] = figures["accepted"]
        for class_name, scores in section["per_class"].items():
            readable = class_name.replace("/", " or ")  # "/" would nest the metric in the UI
            for score in ("precision", "recall"):
                values[f"{model}/test_{score}/{readable}"] = scores[score]
    return {name: {"step": 0, "value": value} for name, value in values.items()}
