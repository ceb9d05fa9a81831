"""How many images a forward pass outside training should take on this machine: the
project's validation pass (`training.evaluate`: channels-last, inference mode, bfloat16
autocast where the CPU computes it natively) over 6,000 images of the `default` network
(`bn2`, 5 classes; the speed does not depend on the weights), for each batch size, in float32
and, where native, bfloat16. Each figure is the fastest of `--repeats` passes after an untimed
one; the ratio is against batches of 2048, what the project used before.

    python benchmarks/inference_batch.py --output benchmarks/inference-batch.json

`training.inference_batch_size` holds the size the project takes (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

import torch
from benchmark import cpu_model

from fashion_transfer import training
from fashion_transfer.model import FashionCNN

SIZES = (32, 64, 128, 256, 512, 1024, 2048)
IMAGES = 6000


def seconds_per_pass(model, images, labels, precision: str, size: int, repeats: int) -> float:
    with mock.patch.object(training, "inference_batch_size", lambda device: size):
        training.evaluate(model, images, labels, precision)  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            training.evaluate(model, images, labels, precision)
            times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = FashionCNN("bn2", 5).to(memory_format=torch.channels_last).eval()
    images = torch.rand(IMAGES, 1, 28, 28)
    labels = torch.randint(0, 5, (IMAGES,))
    native = training.resolve_precision("auto", torch.device("cpu")) == "bfloat16"
    results = {}
    for precision in ["float32", *(["bfloat16"] if native else [])]:
        rows = {
            size: seconds_per_pass(model, images, labels, precision, size, args.repeats)
            for size in SIZES
        }
        results[precision] = {
            str(size): {
                "seconds": round(seconds, 3),
                "images_per_second": round(IMAGES / seconds),
                "against_2048": round(rows[2048] / seconds, 2),
            }
            for size, seconds in rows.items()
        }
        print(f"{precision}: " + ", ".join(f"{s} {t:.2f} s" for s, t in rows.items()))
    report = {
        "machine": {
            "processor": cpu_model(),
            "native_bfloat16": native,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "images": IMAGES,
        "project_batch_size": training.inference_batch_size(torch.device("cpu")),
        "seconds_per_pass": results,
    }
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
