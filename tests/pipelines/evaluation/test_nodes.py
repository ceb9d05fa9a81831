import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fashion_transfer.model import FashionCNN
from fashion_transfer.pipelines.evaluation.nodes import (
    analyse_fit,
    build_ensemble,
    compute_test_metrics,
    plot_confusion_matrices,
    plot_learning_curves,
    predict_test_sets,
    summarise_metrics,
)
from fashion_transfer.training import predict_proba
from tests.conftest import RUNTIME_PARAMS

THRESHOLDS = {
    "fit_analysis": {
        "underfit_train_accuracy": 0.9,
        "overfit_gap": 0.03,
        "overfit_val_loss_rise": 0.25,
        "trend_epochs": 3,
    }
}


def _predictions():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    return {
        "m": {
            "y_true": y_true,
            "y_pred": y_pred,
            "probabilities": None,
            "class_names": ["a", "b", "c"],
        }
    }


def test_metrics_match_hand_computed_values():
    metrics, reports, confusions = compute_test_metrics(_predictions())
    m = metrics["m"]
    assert m["test_accuracy"] == pytest.approx(4 / 6)
    # precision a=2/3, b=2/3, c=0 (never predicted); recall a=2/3, b=1, c=0
    assert m["macro_precision"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8})
    matrix = confusions["m"].set_index("true \\ predicted")
    assert matrix.loc["a"].tolist() == [2, 1, 0] and matrix.loc["c"].tolist() == [1, 0, 0]
    assert list(matrix.columns) == ["a", "b", "c"]
    assert {"a", "b", "c", "macro avg"} <= set(reports["m"]["class"])


def _history(train_acc, val_acc, val_loss):
    return [
        {
            "epoch": i + 1,
            "train_loss": 0.1,
            "train_accuracy": t,
            "val_loss": loss,
            "val_accuracy": v,
            "seconds": 1.0,
        }
        for i, (t, v, loss) in enumerate(zip(train_acc, val_acc, val_loss, strict=True))
    ]


@pytest.mark.parametrize(
    ("history", "verdict", "trend"),
    [
        (
            _history([0.95, 0.97, 0.98], [0.94, 0.96, 0.965], [0.3, 0.25, 0.24]),
            "good fit",
            "falling",
        ),
        (_history([0.95, 0.99, 1.0], [0.94, 0.95, 0.94], [0.29, 0.3, 0.29]), "overfitting", "flat"),
        (
            _history([0.95, 0.96, 0.97], [0.94, 0.96, 0.95], [0.2, 0.25, 0.4]),
            "overfitting",
            "rising",
        ),
        (
            _history([0.6, 0.7, 0.75], [0.62, 0.71, 0.76], [0.9, 0.8, 0.7]),
            "underfitting",
            "falling",
        ),
    ],
    ids=["good", "gap", "val-loss-rise", "underfit"],
)
def test_fit_verdicts_follow_the_documented_thresholds(history, verdict, trend):
    analysis = analyse_fit({"m": history}, THRESHOLDS)["m"]
    assert analysis["verdict"] == verdict
    assert analysis["val_loss_trend"] == trend
    best = max(history, key=lambda row: row["val_accuracy"])
    assert analysis["best_epoch"] == best["epoch"]
    assert analysis["accuracy_gap"] == pytest.approx(best["train_accuracy"] - best["val_accuracy"])


def test_summary_has_a_section_per_model_with_the_required_keys():
    metrics, _, _ = compute_test_metrics(_predictions())
    history = _history([0.95, 0.97, 0.98], [0.94, 0.96, 0.965], [0.3, 0.25, 0.24])
    summary = summarise_metrics(metrics, analyse_fit({"m": history}, THRESHOLDS), {})
    assert {"test_accuracy", "macro_precision", "macro_recall", "macro_f1", "fit_verdict"} <= set(
        summary["m"]
    )
    assert summary["m"]["fit_verdict"] == "good fit"


def test_plots_are_one_figure_per_model():
    history = _history([0.95, 0.97, 0.98], [0.94, 0.96, 0.965], [0.3, 0.25, 0.24])
    curves = plot_learning_curves({"m": history}, analyse_fit({"m": history}, THRESHOLDS))
    matrices = plot_confusion_matrices(_predictions())
    for figures in (curves, matrices):
        assert list(figures) == ["m.png"] and isinstance(figures["m.png"], Figure)
    labels = [t.get_text() for t in matrices["m.png"].axes[0].get_xticklabels()]
    assert labels == ["a", "b", "c"]
    loss_ax, _ = curves["m.png"].axes
    assert loss_ax.get_ylabel() == "cross-entropy (no label smoothing)"
    curves["m.png"].canvas.draw()
    ticks = [tick for tick in loss_ax.get_xticks() if 1 <= tick <= 3]
    assert ticks == [1, 2, 3]  # whole epochs only


def _untrained(seed: int) -> FashionCNN:
    torch.manual_seed(seed)
    return FashionCNN("compact", num_classes=5)


@pytest.mark.parametrize("ensemble", [True, False])
def test_ensemble_is_the_mean_of_transfer_and_scratch_probabilities(stage_data, ensemble):
    pretrain_data, transfer_data = stage_data
    transfer_model, scratch_model = _untrained(1), _untrained(2)
    ensembles, val_accuracy = build_ensemble(
        transfer_model,
        {"scratch": scratch_model},
        transfer_data,
        RUNTIME_PARAMS,
        {**THRESHOLDS, "ensemble": ensemble},
    )
    predictions = predict_test_sets(
        _untrained(0),
        transfer_model,
        {"scratch": scratch_model},
        ensembles,
        pretrain_data,
        transfer_data,
        RUNTIME_PARAMS,
    )
    if not ensemble:
        assert ensembles == {} and val_accuracy == {}
        assert list(predictions) == ["pretrain", "transfer", "scratch"]
        return
    assert list(predictions) == ["pretrain", "transfer", "scratch", "ensemble"]
    images = transfer_data["test_images"]
    expected = (predict_proba(transfer_model, images) + predict_proba(scratch_model, images)) / 2
    np.testing.assert_allclose(predictions["ensemble"]["probabilities"], expected, rtol=1e-5)
    assert (predictions["ensemble"]["y_pred"] == expected.argmax(axis=1)).all()
    assert predictions["ensemble"]["class_names"] == transfer_data["class_names"]
    # The two members disagree somewhere, or the test could not tell the mean from either one.
    assert (predictions["transfer"]["y_pred"] != predictions["scratch"]["y_pred"]).any()
    images = transfer_data["val_images"]
    expected = (predict_proba(transfer_model, images) + predict_proba(scratch_model, images)) / 2
    assert val_accuracy == {
        "ensemble": pytest.approx((expected.argmax(axis=1) == transfer_data["val_labels"]).mean())
    }


def test_no_ensemble_without_a_scratch_baseline(stage_data):
    _, transfer_data = stage_data
    assert build_ensemble(_untrained(1), {}, transfer_data, RUNTIME_PARAMS, THRESHOLDS) == ({}, {})


def test_summary_of_an_untrained_combination_has_test_metrics_and_its_validation_accuracy():
    metrics, _, _ = compute_test_metrics(_predictions())
    summary = summarise_metrics(metrics, {}, {"m": 0.75})
    assert summary["m"]["val_accuracy"] == 0.75 and "test_accuracy" in summary["m"]
    assert "fit_verdict" not in summary["m"]
