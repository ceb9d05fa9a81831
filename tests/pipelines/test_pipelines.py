"""Each stage pipeline run on in-memory synthetic data, chained as `kedro run` chains them."""

import typing

import pytest

from fashion_transfer.model import FashionCNN
from fashion_transfer.pipeline_registry import register_pipelines
from fashion_transfer.pipelines import catalogue, evaluation, split, transfer
from fashion_transfer.pipelines.split.nodes import combine_stages
from fashion_transfer.training import predict_proba
from tests.conftest import (
    RUNTIME_PARAMS,
    SPLIT_PARAMS,
    TRAINING_PARAMS,
    run_pipeline,
)
from tests.pipelines.evaluation.test_nodes import THRESHOLDS


def test_registry_composes_stages_with_their_data_preparation():
    pipelines = register_pipelines()
    assert {"ingestion", "split", "pretrain", "transfer", "evaluation", "__default__"} <= set(
        pipelines
    )
    for name in ("pretrain", "transfer", "catalogue", "evaluation"):
        assert {"assemble_dataset", "split_stages"} <= {n.name for n in pipelines[name].nodes}
    assert "train_catalogue" in {n.name for n in pipelines["__default__"].nodes}
    assert "pretrain" not in {n.name for n in pipelines["transfer"].nodes}
    assert set(pipelines["__default__"].all_outputs()) >= {"metrics", "learning_curve_plots"}
    assert "classify_images" not in {n.name for n in pipelines["__default__"].nodes}
    assert {n.name for n in pipelines["predict"].nodes} == {"classify_images"}
    # Every training node of every stage trains on its training set; nothing else reads it.
    for stage, trainers in {
        "pretrain": {"pretrain"},
        "transfer": {"transfer", "train_scratch_baseline"},
        "catalogue": {"train_catalogue", "train_catalogue_scratch"},
    }.items():
        readers = {
            n.name for n in pipelines["__default__"].nodes if f"{stage}_training_set" in n.inputs
        }
        assert readers == trainers


def test_every_nodes_type_hints_resolve_as_kedro_reads_them_at_start_up():
    # Kedro's parameter validation reads every node's hints and logs a warning for each
    # that does not resolve (a type imported only for type checkers, say) in every run.
    for pipeline in register_pipelines().values():
        for node in pipeline.nodes:
            typing.get_type_hints(node.func)


def test_split_pipeline(fashion_mnist):
    catalog = run_pipeline(
        split.create_pipeline(), fashion_mnist=fashion_mnist, **{"params:split": SPLIT_PARAMS}
    )
    assert catalog["transfer_data"].load()["class_names"][0] == "Sandal"
    # The catalogue: both stages together, labelled among all ten classes in order.
    pretrain_data, transfer_data, catalogue_data = (
        catalog[f"{stage}_data"].load() for stage in ("pretrain", "transfer", "catalogue")
    )
    assert catalogue_data["source_classes"] == list(range(10))
    for split_name in ("train", "val", "test"):
        images, labels = (
            catalogue_data[f"{split_name}_images"],
            catalogue_data[f"{split_name}_labels"],
        )
        stages = (pretrain_data, transfer_data)
        assert len(images) == sum(len(d[f"{split_name}_images"]) for d in stages)
        # A transfer image keeps its class: Sandal is transfer's 0 and the catalogue's 5.
        first = len(pretrain_data[f"{split_name}_labels"])
        assert (labels[first:] == transfer_data[f"{split_name}_labels"] + 5).all()
        assert (images[first:] == transfer_data[f"{split_name}_images"]).all()


@pytest.mark.parametrize("scratch_baseline", [True, False])
def test_transfer_then_evaluation(stage_data, scratch_baseline):
    pretrain_data, transfer_data = stage_data
    params = {
        "params:transfer": {**TRAINING_PARAMS, "scratch_baseline": scratch_baseline},
        "params:runtime": RUNTIME_PARAMS,
        "params:evaluation": THRESHOLDS,
        "params:registry": {
            "register_models": True,
            "alias": "champion",
            "parity_images": 100,
            "model_names": {"transfer": "t", "ensemble": "e", "catalogue": "c"},
        },
        "params:split": SPLIT_PARAMS,
    }
    trained = run_pipeline(
        transfer.create_pipeline(),
        pretrain_model=FashionCNN("seed", 5),
        transfer_data=transfer_data,
        **params,
    )
    outputs = {
        name: trained[name].load()
        for name in ("transfer_model", "transfer_history", "baseline_models", "baseline_histories")
    }
    untrained = FashionCNN("seed", 5)
    catalogue_data = combine_stages(pretrain_data, transfer_data)
    # One of the two runs adds training photos: both catalogue models train with them.
    photos = 6 if scratch_baseline else None
    catalogue_params = {
        **TRAINING_PARAMS,
        "epochs": 1,
        "scratch_baseline": scratch_baseline,
        "training_photos": photos,
    }
    whole = run_pipeline(
        catalogue.create_pipeline(),
        pretrain_model=untrained,
        catalogue_data=catalogue_data,
        **{**params, "params:catalogue": catalogue_params},
    )
    training_data = whole["catalogue_training_set"].load()
    added = len(training_data["train_images"]) - len(catalogue_data["train_images"])
    assert added == (photos or 0)
    assert (training_data["val_images"] == catalogue_data["val_images"]).all()
    outputs |= {
        name: whole[name].load()
        for name in (
            "catalogue_model",
            "catalogue_history",
            "catalogue_baselines",
            "catalogue_baseline_histories",
        )
    }
    assert outputs["catalogue_model"].num_classes == 10
    assert list(outputs["catalogue_baselines"]) == (
        ["catalogue_scratch"] if scratch_baseline else []
    )
    report = run_pipeline(
        evaluation.create_pipeline(),
        pretrain_model=untrained,
        pretrain_history=outputs["transfer_history"],
        pretrain_data=pretrain_data,
        transfer_data=transfer_data,
        catalogue_data=catalogue_data,
        **outputs,
        **params,
    )
    metrics = report["metrics"].load()
    trained = ["pretrain", "transfer"] + (["scratch"] if scratch_baseline else [])
    assert list(metrics) == (
        trained
        + (["ensemble"] if scratch_baseline else [])
        + ["catalogue"]
        + (["catalogue_scratch"] if scratch_baseline else [])
    )
    assert metrics["catalogue"]["test_examples"] == len(catalogue_data["test_labels"])
    assert {"test_ece", "test_ece_uncalibrated", "temperature", "ood_threshold"} <= set(
        metrics["transfer"]
    )
    assert set(metrics["transfer"]["ood"]) == {"digits", "synthetic", "pretrain classes"}
    served = report["served_models"].load()
    assert list(served) == list(metrics)
    trained += ["catalogue"] + (["catalogue_scratch"] if scratch_baseline else [])
    assert metrics["transfer"]["test_accuracy"] > 0.8
    # Each model is scored on its own stage's test set, the untrained one included.
    predicted = predict_proba(untrained, pretrain_data["test_images"], "cpu").argmax(axis=1)
    assert metrics["pretrain"]["test_accuracy"] == pytest.approx(
        (predicted == pretrain_data["test_labels"]).mean()
    )
    assert set(report["learning_curve_plots"].load()) == {f"{m}.png" for m in trained}
    assert metrics["transfer"]["test_examples"] == len(transfer_data["test_labels"])
    # ... and on the photo test set of its stage, 3 photos of each class (THRESHOLDS).
    assert metrics["transfer"]["photo_examples"] == 3 * len(transfer_data["class_names"])
    assert 0 <= metrics["pretrain"]["photo_accuracy"] <= 1
    assert set(report["photo_plots"].load()) == {f"{m}.png" for m in metrics}
    # What the hook registers once the run has succeeded: the transfer model and, where it
    # was built, the ensemble, with the figures the champion rule compares.
    plan = report["models_to_register"].load()
    assert plan["transfer"]["val_accuracy"] == metrics["transfer"]["val_accuracy"]
    assert plan["transfer"]["dataset"] == "served_models"
    assert plan["catalogue"]["data"] == "catalogue_data"
    if scratch_baseline:
        assert plan["ensemble"]["dataset"] == "served_models"
    else:
        assert plan["ensemble"] == {"name": "e", "skipped": "not built in this run"}
    ensembles = report["ensemble_models"].load()
    assert list(ensembles) == (["ensemble"] if scratch_baseline else [])
    if scratch_baseline:  # the ensemble's validation accuracy is its members' mean's
        members = [outputs["transfer_model"], outputs["baseline_models"]["scratch"]]
        mean = sum(predict_proba(m, transfer_data["val_images"], "cpu") for m in members) / 2
        assert metrics["ensemble"]["val_accuracy"] == pytest.approx(
            (mean.argmax(axis=1) == transfer_data["val_labels"]).mean()
        )
