"""What the MLflow UI's registry pages say about a model, so that a person who finds it there
can use it without the README: the registered model's description (what it classifies and
how to call it) and each version's (how it was trained, on what, and how well it did)."""

from __future__ import annotations

from fashion_transfer.served_model.contract import MAX_BATCH, MAX_PICTURES

STAGES = {
    "pretrain": "the pretrained network, trained from scratch on its classes",
    "transfer": (
        "the pretrained network's frozen convolutional layers under a new dense head trained "
        "on these classes (then, where its recipe asks, its last blocks fine-tuned)"
    ),
    "ensemble": (
        "the mean of the class probabilities of the transfer model and the same network "
        "trained from scratch"
    ),
    "catalogue": (
        "the pretrained network's frozen convolutional layers under a new dense head trained "
        "on all ten classes (then, where its recipe asks, its last blocks fine-tuned)"
    ),
}


def model_description(name: str, class_names: list[str], source_classes: list[int]) -> str:
    pairs = zip(source_classes, class_names, strict=True)
    classes = ", ".join(f"{label} {class_name}" for label, class_name in pairs)
    return f"""A Fashion-MNIST classifier of {len(class_names)} classes, in this order: {classes}.

**Input**, either form, in any MLflow request format:
- pixels: a batch of 28x28 greyscale images, shape (N, 28, 28), 1 <= N <= {MAX_BATCH:,}, values
  0-255 or 0-1, the item light on a dark background: `{{"inputs": [[[0, 0, ...], ...]]}}`;
- pictures: 1 to {MAX_PICTURES:,} encoded files (PNG, JPEG, WebP, GIF, BMP, TIFF) of any size
  and colour, base64 in a column `image`: `{{"dataframe_split": {{"columns": ["image"],
  "data": [["iVBORw0..."]]}}}}`. They are converted as the project's `predict` converts them:
  the item found on its background, cropped, levelled and scaled to 28x28 as Fashion-MNIST's
  pictures were made.

**Output**, a row per image: `label` (the Fashion-MNIST label), `class_name`, `confidence`
(a calibrated probability: of the answers given with confidence 0.9, about 90% are right),
`recognised` (false: the picture does not look like any of these classes, whatever the
answer) with its `ood_score`, and the probability of each class. Input that is neither form
gets HTTP 400 saying what is expected.

**Serve**: `mlflow models serve -m "models:/{name}@champion" --env-manager local`; each
version also carries `artifacts/model.onnx`, which ONNX Runtime runs without MLflow or
PyTorch (input `images` (N, 28, 28) float32 in [0, 1]; outputs `probabilities`,
`ood_score` and `recognised`; the class names and the threshold are in the graph's metadata)
and carries its picture conversion in `code/served_model/pictures.py`. The alias `champion`
is on the version with the best validation accuracy among the versions trained on the same
classes and validation split."""


def version_description(stage: str, entry: dict, run, parity: str) -> str:
    tags = run.data.tags
    return f"""{STAGES.get(stage, stage)}.

- Validation accuracy **{entry["val_accuracy"]:.4f}**, test accuracy {entry["test_accuracy"]:.4f}
  (chosen on validation; the test split was looked at once).
- Trained by run `{tags.get("mlflow.runName", run.info.run_id)}` ({run.info.run_id}), preset
  `{tags.get("preset", "?")}`, commit {tags.get("git_commit", "unknown")[:12]}, data from
  {tags.get("data_source", "?")}.
- ONNX graph checked against PyTorch: {parity}."""
