"""Every out-of-distribution score (fashion_transfer/recognition.py) on the models of the last
`kedro run` in this project, through the evaluation pipeline's own nodes: each model
calibrated and given the score and its 95% threshold on its validation split (`calibrate`),
then measured as the evaluation measures it (`score_recognition`, `score_photos`): AUROC and
the share accepted for the digits, the synthetic non-garments and the other stage's clothes,
and the share of its own test images and of the photo test set that it recognises. The
models are the run's; only the score changes.

    kedro run
    python benchmarks/recognition_scores.py --output benchmarks/recognition-scores.json

`evaluation.recognition.score` picks the served one (docs/experiments.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from last_run import load_last_run

from fashion_transfer.pipelines.evaluation import nodes
from fashion_transfer.recognition import SCORES


def measure(scores: list[str]) -> dict:
    params, data, models, stages = load_last_run()
    runtime, evaluation = params["runtime"], params["evaluation"]
    outliers = nodes.build_outlier_sets(evaluation)
    photo_sets = nodes.render_photo_sets(
        data["pretrain"], data["transfer"], data["catalogue"], evaluation
    )
    photo_views = nodes.see_photos(photo_sets)
    results = {}
    for score in scores:
        recognition = {**evaluation.get("recognition", {}), "score": score}
        served, _ = nodes.calibrate(
            models, stages, {**evaluation, "recognition": recognition}, runtime
        )
        predictions = nodes.predict_test_sets(served, models, stages, runtime)
        metrics, _ = nodes.score_recognition(served, models, predictions, stages, outliers, runtime)
        photos = nodes.score_photos(
            nodes.predict_photo_sets(served, models, photo_sets, photo_views, runtime)
        )
        results[score] = {
            name: {
                **{
                    set_name: {"auroc": found["auroc"], "accepted": found["accepted"]}
                    for set_name, found in measured["sets"].items()
                },
                "test_recognised": measured["test_recognised"],
                "photo_recognised": photos[name]["photo_recognised"],
            }
            for name, measured in metrics.items()
        }
        print(score, json.dumps(results[score]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", nargs="+", choices=SCORES, default=list(SCORES))
    parser.add_argument("--output", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    results = measure(args.scores)
    if args.output:
        args.output.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
