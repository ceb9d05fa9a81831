"""What each variation of the photo test set costs the models of the last `kedro run` in this
project: the photo set rendered as the evaluation renders it (`evaluation.photos`), then again
with every variation off, and with each variation off alone and on alone, each converted and
scored by the evaluation pipeline's own nodes (`render_photo_sets`, `see_photos`,
`predict_photo_sets`, `score_photos`). The models and the photos' draws are the run's; only
the rendering changes.

    kedro run
    python benchmarks/photo_variations.py --output benchmarks/photo-variations.json

A variation "off" is the renderer at its plainest there (OFF below): upright, square to the
camera, the item 0.9 of the frame, black on a white, even, untinted, smooth background, no
noise or blur, JPEG quality 95. With `--per-class 100` (the default: half the evaluation's
photos) it takes about 7 minutes on a 2-core CPU."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from last_run import load_last_run

from fashion_transfer.pipelines.evaluation import nodes

OFF = {
    "rotation": 0,
    "perspective": 0,
    "item_size": (0.9, 0.9),
    "background_brightness": (1.0, 1.0),
    "dark_background_probability": 0,
    "gradient": 0,
    "tint": 0,
    "texture": 0,
    "item_colour": 0,
    "noise": 0,
    "blur": 0,
    "jpeg_quality": (95, 95),
}


def renderings(photos: dict) -> dict[str, dict]:
    """Each row's photo settings: as the evaluation renders, all off, then per variation."""
    rows = {"as evaluated": photos, "all off": {**photos, **OFF}}
    for key, plain in OFF.items():
        rows[f"without {key}"] = {**photos, key: plain}
        rows[f"{key} alone"] = {**photos, **{k: v for k, v in OFF.items() if k != key}}
    return rows


def measure(per_class: int) -> dict:
    params, data, models, stages = load_last_run()
    runtime, evaluation = params["runtime"], params["evaluation"]
    served, _ = nodes.calibrate(models, stages, evaluation, runtime)
    results = {}
    for row, photos in renderings({**evaluation["photos"], "per_class": per_class}).items():
        started = time.perf_counter()
        photo_sets = nodes.render_photo_sets(
            data["pretrain"],
            data["transfer"],
            data["catalogue"],
            {**evaluation, "photos": photos},
        )
        scores = nodes.score_photos(
            nodes.predict_photo_sets(
                served, models, photo_sets, nodes.see_photos(photo_sets), runtime
            )
        )
        results[row] = {name: found["photo_accuracy"] for name, found in scores.items()}
        accuracies = "  ".join(f"{name} {value:.1%}" for name, value in results[row].items())
        print(f"{row:36} {accuracies}  ({time.perf_counter() - started:.0f} s)", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=100, help="photos of each class")
    parser.add_argument("--output", type=Path, help="write the accuracies here as JSON")
    args = parser.parse_args()
    results = measure(args.per_class)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
