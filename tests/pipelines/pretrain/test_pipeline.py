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
    history = catalog["pretrain_history"].load()
    assert isinstance(model, FashionCNN) and model.num_classes == 5
    assert len(history) == TRAINING_PARAMS["epochs"]
    assert max(row["val_accuracy"] for row in history) > 0.9
