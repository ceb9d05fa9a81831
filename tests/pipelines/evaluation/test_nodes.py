import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fashion_transfer.calibration import expected_calibration_error, fit_temperature
from fashion_transfer.model import FashionCNN
from fashion_transfer.pipelines.evaluation.nodes import (
    _softmax,
    analyse_fit,
    assess_calibration,
    build_ensemble,
    build_outlier_sets,
    calibrate,
    compute_test_metrics,
    gather_models,
    gather_stages,
    plot_confusion_matrices,
    plot_learning_curves,
    plot_photo_examples,
    plot_recognition,
    plot_reliability,
    predict_photo_sets,
    predict_test_sets,
    render_photo_sets,
    score_photos,
    score_recognition,
    see_photos,
    summarise_metrics,
)
from fashion_transfer.training import encode, predict_proba, recognise
from tests.conftest import RUNTIME_PARAMS

THRESHOLDS = {
    "fit_analysis": {
        "underfit_train_accuracy": 0.9,
        "overfit_gap": 0.03,
        "overfit_val_loss_rise": 0.25,
        "trend_epochs": 3,
    },
    "photos": {"per_class": 3},  # a small photo test set: rendering takes time
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
    summary = summarise_metrics(
        metrics, analyse_fit({"m": history}, THRESHOLDS), {}, {}, {}, {}, {}
    )
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


@pytest.fixture
def stages(stage_data) -> dict:
    from fashion_transfer.pipelines.split.nodes import combine_stages

    pretrain_data, transfer_data = stage_data
    return gather_stages(pretrain_data, transfer_data, combine_stages(pretrain_data, transfer_data))


def _catalogue(seed: int) -> FashionCNN:
    torch.manual_seed(seed)
    return FashionCNN("compact", num_classes=10)


@pytest.mark.parametrize("ensemble", [True, False])
def test_ensemble_is_the_mean_of_transfer_and_scratch_probabilities(stages, ensemble):
    transfer_data = stages["transfer"]
    transfer_model, scratch_model = _untrained(1), _untrained(2)
    ensembles, val_accuracy = build_ensemble(
        transfer_model,
        {"scratch": scratch_model},
        transfer_data,
        RUNTIME_PARAMS,
        {**THRESHOLDS, "ensemble": ensemble},
    )
    models = gather_models(
        _untrained(0), transfer_model, {"scratch": scratch_model}, ensembles, _catalogue(3), {}
    )
    if not ensemble:
        assert ensembles == {} and val_accuracy == {}
        assert list(models) == ["pretrain", "transfer", "scratch", "catalogue"]
        return
    assert list(models) == ["pretrain", "transfer", "scratch", "ensemble", "catalogue"]
    assert models["ensemble"][1] == "transfer" and models["catalogue"][1] == "catalogue"
    images = transfer_data["test_images"]
    ensemble_model = models["ensemble"][0]
    expected = (predict_proba(transfer_model, images) + predict_proba(scratch_model, images)) / 2
    np.testing.assert_allclose(predict_proba(ensemble_model, images), expected, rtol=1e-5)
    # The two members disagree somewhere, or the test could not tell the mean from either one.
    assert (
        predict_proba(transfer_model, images).argmax(1)
        != predict_proba(scratch_model, images).argmax(1)
    ).any()
    images = transfer_data["val_images"]
    expected = (predict_proba(transfer_model, images) + predict_proba(scratch_model, images)) / 2
    assert val_accuracy == {
        "ensemble": pytest.approx((expected.argmax(axis=1) == transfer_data["val_labels"]).mean())
    }


def test_no_ensemble_without_a_scratch_baseline(stage_data):
    _, transfer_data = stage_data
    assert build_ensemble(_untrained(1), {}, transfer_data, RUNTIME_PARAMS, THRESHOLDS) == ({}, {})


def _served(stages, score: str = "mahalanobis"):
    models = gather_models(_untrained(0), _untrained(1), {}, {}, _catalogue(3), {})
    params = {**THRESHOLDS, "recognition": {"score": score}}
    served, calibration = calibrate(models, stages, params, RUNTIME_PARAMS)
    return models, served, calibration


def test_each_model_is_served_calibrated_with_a_threshold_fixed_on_validation(stages):
    models, served, calibration = _served(stages)
    assert list(served) == list(models) == list(calibration)
    for name, (model, stage) in models.items():
        data = stages[stage]
        wrapped = served[name]
        assert wrapped.classifier is model
        # The temperature is the one that fits the validation split best ...
        logits = encode(model, data["val_images"], "cpu").numpy()
        assert calibration[name]["temperature"] == pytest.approx(
            fit_temperature(logits, data["val_labels"]), rel=1e-6
        )
        # ... it divides the logits, so no answer changes ...
        probabilities = predict_proba(wrapped, data["test_images"], "cpu")
        assert (
            probabilities.argmax(1) == predict_proba(model, data["test_images"]).argmax(1)
        ).all()
        # ... and 95% of the validation images are recognised.
        _, scores = recognise(wrapped, data["val_images"], "cpu")
        assert (scores <= calibration[name]["ood_threshold"]).mean() == pytest.approx(
            0.95, abs=0.02
        )
    predictions = predict_test_sets(served, models, stages, RUNTIME_PARAMS)
    catalogue = predictions["catalogue"]
    assert catalogue["probabilities"].shape == (len(stages["catalogue"]["test_labels"]), 10)
    assert (
        catalogue["class_names"][0] == "T-shirt/top" and catalogue["class_names"][9] == "Ankle boot"
    )
    temperature = calibration["catalogue"]["temperature"]
    logits = encode(models["catalogue"][0], stages["catalogue"]["test_images"], "cpu").numpy()
    np.testing.assert_allclose(catalogue["uncalibrated_probabilities"], _softmax(logits), atol=1e-5)
    np.testing.assert_allclose(
        catalogue["probabilities"], _softmax(logits / temperature), atol=1e-5
    )


def test_recognition_is_measured_on_the_other_stage_the_digits_and_synthetic_pictures(stages):
    models, served, calibration = _served(stages)
    predictions = predict_test_sets(served, models, stages, RUNTIME_PARAMS)
    outliers = build_outlier_sets({**THRESHOLDS, "recognition": {"synthetic_per_kind": 5}})
    assert outliers["digits"].shape == (1797, 28, 28) and outliers["synthetic"].shape == (
        30,
        28,
        28,
    )
    metrics, scores = score_recognition(
        served, models, predictions, stages, outliers, RUNTIME_PARAMS
    )
    assert set(metrics["transfer"]["sets"]) == {"digits", "synthetic", "pretrain classes"}
    assert set(metrics["pretrain"]["sets"]) == {"digits", "synthetic", "transfer classes"}
    assert set(metrics["catalogue"]["sets"]) == {"digits", "synthetic"}  # no other clothes
    digits = metrics["catalogue"]["sets"]["digits"]
    threshold = calibration["catalogue"]["ood_threshold"]
    assert digits["accepted"] == pytest.approx((scores["catalogue"]["digits"] <= threshold).mean())
    assert 0 <= digits["auroc"] <= 1 and digits["pictures"] == 1797
    figures = plot_recognition(scores)
    assert list(figures) == [f"{name}.png" for name in models]


def test_the_class_means_come_from_a_seeded_share_of_the_training_images(stages):
    models = {"pretrain": (_untrained(0), "pretrain")}
    count = len(stages["pretrain"]["train_labels"])

    def class_means(fit_examples):
        recognition = {"score": "mahalanobis", "fit_examples": fit_examples}
        served, _ = calibrate(
            models, stages, {**THRESHOLDS, "recognition": recognition}, RUNTIME_PARAMS
        )
        return served["pretrain"].recogniser.class_means.clone()

    every = class_means(None)
    torch.testing.assert_close(class_means(count), every)  # as many as there are: all
    some = class_means(count // 2)
    torch.testing.assert_close(class_means(count // 2), some)  # the same share again
    assert not torch.allclose(some, every)


def test_a_seeded_share_of_the_digits_can_be_measured():
    every = build_outlier_sets(THRESHOLDS)["digits"]
    some = build_outlier_sets({**THRESHOLDS, "recognition": {"digits": 100}})["digits"]
    again = build_outlier_sets({**THRESHOLDS, "recognition": {"digits": 100}})["digits"]
    assert some.shape == (100, 28, 28) and np.array_equal(some, again)
    chosen = {digit.tobytes() for digit in some}
    assert chosen <= {digit.tobytes() for digit in every} and len(chosen) > 90
    assert not np.array_equal(some, every[:100])  # drawn across the set, not its first rows


def test_calibration_is_assessed_on_the_test_set_before_and_after(stages):
    models, served, calibration = _served(stages, "energy")
    predictions = predict_test_sets(served, models, stages, RUNTIME_PARAMS)
    assessed = assess_calibration(predictions, calibration)
    transfer = predictions["transfer"]
    assert assessed["transfer"]["test_ece"] == pytest.approx(
        expected_calibration_error(transfer["probabilities"], transfer["y_true"])
    )
    assert assessed["transfer"]["test_ece_uncalibrated"] == pytest.approx(
        expected_calibration_error(transfer["uncalibrated_probabilities"], transfer["y_true"])
    )
    figures = plot_reliability(assessed)
    assert list(figures) == [f"{name}.png" for name in models]


def test_summary_of_an_untrained_combination_has_test_metrics_and_its_validation_accuracy():
    metrics, _, _ = compute_test_metrics(_predictions())
    summary = summarise_metrics(metrics, {}, {"m": 0.75}, {}, {}, {}, {})
    assert summary["m"]["val_accuracy"] == 0.75 and "test_accuracy" in summary["m"]
    assert "fit_verdict" not in summary["m"]


def test_the_photo_test_set_is_each_stage_s_test_images_as_photos_the_same_each_time(stages):
    photo_sets = render_photo_sets(
        stages["pretrain"], stages["transfer"], stages["catalogue"], THRESHOLDS
    )
    assert list(photo_sets) == ["pretrain", "transfer", "catalogue"]
    for stage in ("pretrain", "transfer"):
        photos, data = photo_sets[stage], stages[stage]
        assert len(photos["photos"]) == 3 * len(data["class_names"])  # per_class of each
        assert np.bincount(photos["test_labels"]).tolist() == [3] * len(data["class_names"])
        assert all(photo[:2] == b"\xff\xd8" for photo in photos["photos"])  # JPEG
    # The catalogue's photos are both stages' own, labelled among all ten classes.
    catalogue = photo_sets["catalogue"]
    assert (
        catalogue["photos"] == photo_sets["pretrain"]["photos"] + photo_sets["transfer"]["photos"]
    )
    assert np.bincount(catalogue["test_labels"]).tolist() == [3] * 10
    names = [catalogue["class_names"][label] for label in catalogue["test_labels"]]
    transfer = photo_sets["transfer"]
    assert names[15:] == [transfer["class_names"][label] for label in transfer["test_labels"]]
    again = render_photo_sets(
        stages["pretrain"], stages["transfer"], stages["catalogue"], THRESHOLDS
    )
    assert again["transfer"]["photos"] == transfer["photos"]
    other_seed = {**THRESHOLDS, "photos": {"per_class": 3, "seed": 1}}
    moved = render_photo_sets(
        stages["pretrain"], stages["transfer"], stages["catalogue"], other_seed
    )
    assert moved["transfer"]["photos"] != transfer["photos"]


def test_each_model_is_scored_on_the_photos_of_its_stage_as_converted(stages):
    photo_sets = render_photo_sets(
        stages["pretrain"], stages["transfer"], stages["catalogue"], THRESHOLDS
    )
    views = see_photos(photo_sets)
    assert views["transfer"]["images"].shape == (15, 28, 28)
    assert views["transfer"]["images"].dtype == np.uint8
    assert (views["catalogue"]["images"][15:] == views["transfer"]["images"]).all()
    models, served, _ = _served(stages, "msp")
    predictions = predict_photo_sets(served, models, photo_sets, views, RUNTIME_PARAMS)
    assert list(predictions) == ["pretrain", "transfer", "catalogue"]
    expected = predict_proba(served["transfer"], views["transfer"]["images"])
    np.testing.assert_allclose(predictions["transfer"]["probabilities"], expected, rtol=1e-5)
    scores = score_photos(predictions)
    right = (expected.argmax(axis=1) == photo_sets["transfer"]["test_labels"]).mean()
    assert scores["transfer"]["photo_accuracy"] == pytest.approx(right)
    # The served (calibrated) confidence on the photos, and how many of them it recognises.
    labels = photo_sets["transfer"]["test_labels"]
    ece = expected_calibration_error(expected, labels)
    assert scores["transfer"]["photo_ece"] == pytest.approx(ece, abs=1e-6)
    assert ece != pytest.approx(
        expected_calibration_error(predictions["transfer"]["uncalibrated_probabilities"], labels)
    )
    recognised = predictions["transfer"]["recognised"]
    assert scores["transfer"]["photo_recognised"] == pytest.approx(recognised.mean())
    assert (
        scores["transfer"]["photo_examples"] == 15 and scores["catalogue"]["photo_examples"] == 30
    )
    figures = plot_photo_examples(photo_sets, predictions, {**THRESHOLDS, "photo_examples": 5})
    assert list(figures) == ["pretrain.png", "transfer.png", "catalogue.png"]
    assert "photo test set" in figures["transfer.png"]._suptitle.get_text()


def test_the_summary_carries_photo_calibration_and_recognition_figures():
    metrics, _, _ = compute_test_metrics(_predictions())
    photos = {"m": {"photo_accuracy": 0.5, "photo_examples": 4, "photo_items_found": 1.0}}
    assessed = {"m": {"temperature": 0.8, "test_ece": 0.01, "test_ece_uncalibrated": 0.07}}
    calibration = {"m": {"ood_score": "energy", "ood_threshold": -3.0}}
    recognition = {"m": {"test_recognised": 0.95, "sets": {"digits": {"auroc": 0.99}}}}
    summary = summarise_metrics(
        metrics, {}, {"m": 0.75}, photos, assessed, calibration, recognition
    )
    assert summary["m"]["photo_accuracy"] == 0.5 and summary["m"]["photo_examples"] == 4
    assert summary["m"]["test_ece"] == 0.01 and summary["m"]["temperature"] == 0.8
    assert summary["m"]["ood_score"] == "energy" and summary["m"]["ood"]["digits"]["auroc"] == 0.99
