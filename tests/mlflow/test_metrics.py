from fashion_transfer.mlflow.metrics import (
    epoch_metrics,
    final_metric_values,
    transfer_stage_epoch_metrics,
)

HISTORY = [
    {
        "epoch": e,
        "train_loss": 1 / e,
        "train_objective": 1.1 / e,
        "train_accuracy": 0.5,
        "val_loss": 0.4,
        "val_accuracy": 0.6,
        "seconds": 2.0,
    }
    for e in (1, 2, 3)
]


def test_epoch_metrics_have_one_step_per_epoch_under_the_model_name():
    metrics = epoch_metrics(pretrain=HISTORY)
    assert set(metrics) == {
        f"pretrain/{key}"
        for key in (
            "train_loss",
            "train_objective",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "seconds",
        )
    }
    assert metrics["pretrain/train_loss"][1] == {"step": 2, "value": 0.5}
    both = transfer_stage_epoch_metrics(HISTORY, {"scratch": HISTORY})
    assert {name.split("/")[0] for name in both} == {"transfer", "scratch"}
    assert {name.split("/")[0] for name in transfer_stage_epoch_metrics(HISTORY, {})} == {
        "transfer"
    }


def test_test_metrics_have_readable_names():
    section = {
        "test_accuracy": 0.9,
        "macro_precision": 0.8,
        "macro_recall": 0.7,
        "macro_f1": 0.75,
        "per_class": {"T-shirt/top": {"precision": 0.6, "recall": 0.5, "f1": 0.55}},
        "val_accuracy": 0.95,
    }
    trained = {**section, "best_epoch": 3, "fit_verdict": "good fit"}
    values = final_metric_values({"pretrain": trained, "ensemble": section})
    assert values["pretrain/test_accuracy"] == {"step": 0, "value": 0.9}
    assert values["pretrain/test_macro_f1"]["value"] == 0.75
    assert values["pretrain/test_precision/T-shirt or top"]["value"] == 0.6
    assert values["pretrain/test_recall/T-shirt or top"]["value"] == 0.5
    # A trained model's validation accuracy is its per-epoch series, logged with the history;
    # the ensemble has no history, so its single figure is logged here.
    assert "pretrain/val_accuracy" not in values
    assert values["ensemble/val_accuracy"] == {"step": 0, "value": 0.95}
