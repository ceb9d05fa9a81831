"""Batch prediction over a folder of pictures of any size and colour, converted as the served
model converts them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from fashion_transfer.errors import InputDataError
from fashion_transfer.served_model.contract import MAX_BATCH, unit_scale
from fashion_transfer.served_model.pictures import PictureError, open_picture, to_model_image

# recognised: whether the picture looks like any class the model knows (with ood_score, its
# out-of-distribution score); empty for models registered before they had one.
COLUMNS = ["file", "class_name", "label", "confidence", "recognised", "ood_score", "error"]


def classify_images(images: dict[str, Callable[[], bytes]], classifier) -> pd.DataFrame:
    """One row per file: the predicted class, its probability and whether the picture is
    recognised as one of the model's classes at all, or why the file was skipped
    (not a picture, unreadable, too large), so that one bad file does not fail the whole
    batch. Hidden files (such as the folder's .gitkeep) are not pictures to classify."""
    names = sorted(name for name in images if not Path(name).name.startswith("."))
    if not names:
        raise InputDataError(
            "There are no images to classify: the folder holds no files. Put pictures in "
            "data/01_raw/images_to_classify/, or classify another folder with "
            "--params predict_images=PATH."
        )
    arrays, rows = {}, []
    for name in names:
        try:
            arrays[name] = to_model_image(open_picture(images[name]()))
        except PictureError as error:  # reported in its row, never fatal
            rows.append({"file": name, "error": f"skipped: {error}"})
    if arrays:
        batch = unit_scale(np.stack(list(arrays.values())))
        predicted = pd.concat(  # the served model takes at most MAX_BATCH images per call
            [
                classifier.predict(chunk)
                for chunk in np.array_split(batch, range(MAX_BATCH, len(batch), MAX_BATCH))
            ],
            ignore_index=True,
        )
        for name, (_, row) in zip(arrays, predicted.iterrows(), strict=True):
            rows.append(
                {
                    "file": name,
                    "class_name": row["class_name"],
                    "label": int(row["label"]),
                    "confidence": float(row["confidence"]),
                    "recognised": bool(row["recognised"]) if "recognised" in row else None,
                    "ood_score": float(row["ood_score"]) if "ood_score" in row else None,
                }
            )
    table = pd.DataFrame(rows, columns=COLUMNS).sort_values("file", ignore_index=True)
    return table.astype({"label": "Int64", "recognised": "boolean", "ood_score": "Float64"})
