from fashion_transfer.model import FashionCNN
from fashion_transfer.pipelines.pretrain import create_pipeline
from tests.conftest import RUNTIME_PARAMS, TRAINING_PARAMS, run_pipeline


def test_pretrain_pipeline_trains_on_the_pretrain_classes(stage_data):
    catalog = run_pipeline(
        create_pipeline(),
        pretrain_data=stage_data[0],
        **{
            "params:model": {"architecture": "seed"},
            "params:pretrain": TRAINING_PARAMS,
            "params:runtime": RUNTIME_PARAMS,
        },
    )
    model = catalog["pretrain_model"].load()
    val_accuracy = catalog["pretrain_epoch_metrics"].load()["pretrain/val_accuracy"]
    assert isinstance(model, FashionCNN) and model.num_classes == 5
    assert [m["step"] for m in val_accuracy] == list(range(1, TRAINING_PARAMS["epochs"] + 1))
    assert max(m["value"] for m in val_accuracy) > 0.9


def test_pretrain_pipeline_makes_and_trains_with_the_outliers_its_recipe_asks_for(stage_data):
    exposure = {"weight": 0.5, "share": 0.25, "photo_crops": 20, "shuffled": 20, "edges": 0}
    catalog = run_pipeline(
        create_pipeline(),
        pretrain_data=stage_data[0],
        **{
            "params:model": {"architecture": "seed"},
            "params:pretrain": {**TRAINING_PARAMS, "epochs": 1, "outlier_exposure": exposure},
            "params:runtime": RUNTIME_PARAMS,
        },
    )
    assert catalog["pretrain_outliers"].load().shape == (40, 28, 28)
    (row,) = catalog["pretrain_history"].load()
    assert row["train_objective"] > row["train_loss"]
