"""Speed benchmark, in one invocation on one machine:

1. one training epoch of the project's loop (fashion_transfer.training.fit) against a plain
   PyTorch loop written below: same model, data, batch size and optimizer, each followed by
   the same validation pass; alternating runs, several repeats; the median throughput ratio;
2. a full `kedro run` of a preset, split into start-up, data, each stage, evaluation and
   tracking (MLflow logging and registration);
3. the figures as JSON, and a table.

    python benchmarks/benchmark.py --preset default --output benchmarks/results-default.json

Two recipes side by side (`--against`: the other run's `--params`; the runs alternate, so
neither always runs first), with the ratio of their wall times and parts:

    python benchmarks/benchmark.py --skip-loop --rounds 1 --against "preset=default,..." \
        --output benchmarks/results-speed.json

On a GPU machine, the default flow on CUDA (the loop comparison is a CPU one, so it is left
out), printing each stage's time and every model's test accuracy:

    python benchmarks/benchmark.py --device cuda --skip-loop --output results-cuda.json

Needs the raw data (run `kedro run --pipeline split` once, or set FASHION_MNIST_SOURCE).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

PROJECT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's marketing name on Linux, else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def load_stage_data(preset: str) -> tuple[dict, dict]:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    with KedroSession.create(PROJECT, runtime_params={"preset": preset}) as session:
        context = session.load_context()
        from fashion_transfer.params import validate_parameters
        from fashion_transfer.pipelines.ingestion.nodes import assemble_dataset
        from fashion_transfer.pipelines.split.nodes import split_stages

        params = validate_parameters(context.params)
        catalog = context.catalog
        raw = assemble_dataset(
            *(
                catalog.load(n)
                for n in ("train_images", "train_labels", "test_images", "test_labels")
            )
        )
        return split_stages(raw, context.params["split"])[0], params


def plain_epoch(model, x, y, x_val, y_val, batch_size, learning_rate, precision) -> None:
    """The textbook loop: shuffle, forward, loss, backward, step; then a validation pass.
    Channels-last layout and the same autocast as the project, so only the loops differ."""
    model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    autocast = torch.autocast("cpu", torch.bfloat16, enabled=precision == "bfloat16")
    model.train()
    for batch in torch.randperm(len(x)).split(batch_size):
        optimizer.zero_grad()
        with autocast:
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.inference_mode(), autocast:
        for images, labels in zip(x_val.split(2048), y_val.split(2048), strict=True):
            nn.functional.cross_entropy(model(images), labels)


def loop_benchmark(stage: dict, params, repeats: int) -> dict:
    from fashion_transfer.model import FashionCNN
    from fashion_transfer.training import fit, images_to_tensor, resolve_precision

    # Like for like: the plain loop has no augmentation, schedule or label smoothing.
    config = params.pretrain.model_copy(
        update={
            "epochs": 1,
            "optimizer": "adam",
            "schedule": "constant",
            "label_smoothing": 0.0,
            "augmentation": None,
            "weight_decay": 0.0,
        }
    )
    x, y = images_to_tensor(stage["train_images"]), torch.from_numpy(stage["train_labels"]).long()
    x_val = images_to_tensor(stage["val_images"])
    y_val = torch.from_numpy(stage["val_labels"]).long()
    architecture, classes = params.model.architecture, len(stage["class_names"])
    precision = resolve_precision(params.runtime.precision, torch.device("cpu"))
    project_seconds, plain_seconds = [], []

    def time_project() -> None:
        torch.manual_seed(0)
        model = FashionCNN(architecture, classes)
        started = time.perf_counter()
        fit(model, stage, config, "cpu", "benchmark", precision=precision)
        project_seconds.append(time.perf_counter() - started)

    def time_plain() -> None:
        torch.manual_seed(0)
        model = FashionCNN(architecture, classes)
        started = time.perf_counter()
        plain_epoch(model, x, y, x_val, y_val, config.batch_size, config.learning_rate, precision)
        plain_seconds.append(time.perf_counter() - started)

    # Warm-up, untimed: the first epoch in a process also pays for oneDNN's kernel set-up.
    warm = {k: v[:2048] for k, v in stage.items() if k.endswith(("images", "labels"))}
    fit(
        FashionCNN(architecture, classes),
        {**stage, **warm},
        config,
        "cpu",
        "warm-up",
        precision=precision,
    )
    plain_epoch(
        FashionCNN(architecture, classes),
        x[:2048],
        y[:2048],
        x_val,
        y_val,
        config.batch_size,
        config.learning_rate,
        precision,
    )

    for repeat in range(repeats):  # ABBA order, so neither loop always runs first
        for measure in (
            (time_project, time_plain) if repeat % 2 == 0 else (time_plain, time_project)
        ):
            measure()
    ratios = [plain / ours for plain, ours in zip(plain_seconds, project_seconds, strict=True)]
    return {
        "architecture": architecture,
        "train_examples": len(x),
        "batch_size": config.batch_size,
        "precision": precision,
        "project_epoch_seconds": project_seconds,
        "plain_epoch_seconds": plain_seconds,
        "median_throughput_ratio": statistics.median(ratios),
    }


def run_benchmark(params: str, device: str) -> dict:
    """A full `kedro run --params PARAMS` in a scratch copy of the project, timed by
    fashion_transfer's TimingHooks; the data is copied in so the run does not download it."""
    from fashion_transfer.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    groups = {
        "data": {n.name for n in pipelines["split"].nodes},
        "pretrain": {"pretrain"},
        "transfer": {"transfer"},
        "scratch baseline": {"train_scratch_baseline"},
        "evaluation": {n.name for n in pipelines["evaluation"].nodes}
        - {n.name for n in pipelines["split"].nodes}
        - {"test_metric_values"},
        "tracking (metrics)": {
            "pretrain_epoch_metrics",
            "transfer_epoch_metrics",
            "test_metric_values",
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for part in ("conf", "src"):
            shutil.copytree(
                PROJECT / part, root / part, ignore=shutil.ignore_patterns("local", "__pycache__")
            )
        (root / "conf" / "local").mkdir()
        shutil.copy(PROJECT / "pyproject.toml", root)
        shutil.copytree(PROJECT / "data" / "01_raw", root / "data" / "01_raw")
        stamps_file = root / "timings.json"
        env = {
            **os.environ,
            "FASHION_TRANSFER_TIMINGS": str(stamps_file),
            "KEDRO_DISABLE_TELEMETRY": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
            env.pop(variable, None)
        started = time.time()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "kedro",
                "run",
                "--params",
                f"{params},runtime.device={device}",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        finished = time.time()
        if result.returncode:
            sys.exit(f"kedro run failed:\n{result.stderr[-3000:]}")
        stamps = json.loads(stamps_file.read_text())
        metrics = json.loads((root / "data" / "08_reporting" / "metrics.json").read_text())

    nodes = stamps["nodes"] + [["(end)", stamps["last_saved"]]]
    node_seconds = {
        name: end - start for (name, start), (_, end) in zip(nodes, nodes[1:], strict=False)
    }
    parts = {"start-up": stamps["pipeline_started"] - started}
    for group, names in groups.items():
        parts[group] = sum(s for n, s in node_seconds.items() if n in names)
    parts["tracking (metrics)"] += finished - stamps["last_saved"]  # registry, run end, exit
    return {
        "params": params,
        "device": device,
        "wall_seconds": finished - started,
        "parts_seconds": parts,
        "node_seconds": node_seconds,
        "val_accuracy": {name: section["val_accuracy"] for name, section in metrics.items()},
        "test_accuracy": {name: section["test_accuracy"] for name, section in metrics.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="default")
    parser.add_argument(
        "--params", default="", help="more of the run's --params, on top of --preset"
    )
    parser.add_argument(
        "--against",
        default=None,
        help="a second run's full --params (e.g. another recipe), timed beside the first",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --against: runs of each, alternating"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: PyTorch's")
    parser.add_argument("--skip-run", action="store_true", help="only the loop comparison")
    parser.add_argument("--skip-loop", action="store_true", help="only the kedro run")
    parser.add_argument(
        "--device", default="auto", help="the kedro run's runtime.device: auto, cpu, cuda, mps"
    )
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks" / "results.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    stage, params = load_stage_data(args.preset)
    figures = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_model": cpu_model(),
            # AVX2, AVX512, ...: which kernels PyTorch picks; bfloat16 is native only with
            # AVX512-BF16 or AMX (see runtime.precision).
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
    }
    if not args.skip_loop:
        figures["loop"] = loop_benchmark(stage, params, args.repeats)
    params = ",".join(p for p in (f"preset={args.preset}", args.params) if p)
    if not args.skip_run and args.against is None:
        figures["run"] = run_benchmark(params, args.device)
    if not args.skip_run and args.against is not None:
        runs: dict[str, list[dict]] = {"run": [], "against": []}
        for round_ in range(args.rounds):  # against first in even rounds, last in odd ones
            order = ("against", "run") if round_ % 2 == 0 else ("run", "against")
            for which in order:
                runs[which].append(
                    run_benchmark(params if which == "run" else args.against, args.device)
                )
        figures["run"], figures["against"] = runs["run"][0], runs["against"][0]
        figures["rounds"] = runs
        figures["wall_time_ratio"] = statistics.median(
            ours["wall_seconds"] / theirs["wall_seconds"]
            for ours, theirs in zip(runs["run"], runs["against"], strict=True)
        )
    args.output.write_text(json.dumps(figures, indent=2))

    if "loop" in figures:
        loop = figures["loop"]
        print(
            f"\nLoop, one epoch of {loop['train_examples']} images ({loop['architecture']}, "
            f"batch {loop['batch_size']}), {args.repeats} alternating repeats:"
        )
        print(f"  project loop  {statistics.median(loop['project_epoch_seconds']):7.1f} s (median)")
        print(f"  plain PyTorch {statistics.median(loop['plain_epoch_seconds']):7.1f} s (median)")
        print(f"  throughput ratio project/plain: {loop['median_throughput_ratio']:.3f}")
    for which in ("against", "run"):
        if which not in figures:
            continue
        run = figures[which]
        print(
            f"\nkedro run --params {run['params']},runtime.device={args.device}: "
            f"{run['wall_seconds']:.0f} s wall"
        )
        for part, seconds in run["parts_seconds"].items():
            print(f"  {part:<20} {seconds:7.1f} s")
        for split in ("val", "test"):
            accuracies = run[f"{split}_accuracy"].items()
            print(f"  {split} accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in accuracies))
    if "wall_time_ratio" in figures:
        print(
            f"\nwall time ratio (--params {params}) / (--params {args.against}): "
            f"{figures['wall_time_ratio']:.3f}, median of {args.rounds} round(s)"
        )
    print(f"\nFigures written to {args.output}")


if __name__ == "__main__":
    main()
