"""Every training pipeline prepares its training as the others do (pipelines/training_set.py):
its trainers read the stage's data with the training photos added and the stage's outliers,
never the stage's data alone."""

import pytest

from fashion_transfer.pipeline_registry import register_pipelines

TRAINERS = {
    "pretrain": ["pretrain"],
    "transfer": ["transfer", "train_scratch_baseline"],
    "catalogue": ["train_catalogue", "train_catalogue_scratch"],
}


@pytest.mark.parametrize("stage", sorted(TRAINERS))
def test_each_trainer_reads_its_stage_training_set_and_outliers(stage):
    pipeline = register_pipelines()[stage]
    nodes = {node.name: node for node in pipeline.nodes}
    made = {output: name for name, node in nodes.items() for output in node.outputs}
    assert made[f"{stage}_training_set"] == f"add_{stage}_training_photos"
    assert made[f"{stage}_outliers"] == f"make_{stage}_outliers"
    for trainer in TRAINERS[stage]:
        inputs = set(nodes[trainer].inputs)
        assert {f"{stage}_training_set", f"{stage}_outliers"} <= inputs, trainer
        assert f"{stage}_data" not in inputs, trainer
    for name in (f"add_{stage}_training_photos", f"make_{stage}_outliers"):
        assert stage in nodes[name].tags
