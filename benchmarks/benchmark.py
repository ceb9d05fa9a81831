"""Speed benchmark, in one invocation on one machine:

1. one training epoch of the project's loop (fashion_transfer.training.fit) against a plain
   PyTorch loop written below: same model, data, batch size and optimizer, each followed by
   the same validation pass; alternating runs, several repeats; the median throughput ratio;
2. a full `kedro run` of a preset in a scratch copy of the project, its wall time split by the
   run's own timestamps (fashion_transfer/framework/timing.py) into start-up (imports, Kedro's
   session, the hooks' checks), data, each stage, evaluation and tracking: the MLflow run's
   start, the parameters kedro-mlflow logs before each node, the metrics, the ONNX export and
   its parity check, the rest of the registration, and the run's end (closing the run, the
   process's exit). The MLflow store is made before the timed run, as any run after the
   first finds it (`--new-store` times a first run's);
3. the figures as JSON, and a table.

    python benchmarks/benchmark.py --preset default --output benchmarks/results-default.json

Two recipes side by side (`--against`: the other run's `--params`; the runs alternate, so
neither always runs first), with the ratio of their wall times and parts:

    python benchmarks/benchmark.py --skip-loop --rounds 1 --against "preset=default,..." \
        --output benchmarks/results-speed.json

Two versions of the code side by side (`--against-project`: another checkout, e.g. a
`git worktree` of the commit before a change), on a small slice to time the fixed costs:

    python benchmarks/benchmark.py --skip-loop --rounds 3 --against-project ../before \
        --params split.max_examples_per_stage=2000,pretrain.epochs=1 --output /tmp/fixed.json

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

    # Like for like: the plain loop has no augmentation, schedule, label smoothing or outlier
    # exposure.
    config = params.pretrain.model_copy(
        update={
            "epochs": 1,
            "optimizer": "adam",
            "schedule": "constant",
            "label_smoothing": 0.0,
            "augmentation": None,
            "weight_decay": 0.0,
            "outlier_exposure": None,
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


# The parts of a run's wall time, in the table's order; the tracking parts are MLflow's.
PARTS = (
    "start-up",
    "data",
    "pretrain",
    "transfer",
    "scratch baseline",
    "catalogue",
    "evaluation",
    "tracking: run start",
    "tracking: parameters",
    "tracking: metrics",
    "tracking: ONNX export",
    "tracking: ONNX parity check",
    "tracking: registration",
    "tracking: run end",
)
FIXED_PARTS = ("start-up", "data") + tuple(part for part in PARTS if part.startswith("tracking"))

STORE_SCRIPT = """
from fashion_transfer.framework.config import experiment_name
from fashion_transfer.mlflow.store import artifact_location, prepare_store, tracking_uri
prepare_store(tracking_uri(), experiment_name(), artifact_location())
"""


# The training pipelines, each a part of the run (the transfer pipeline's scratch baseline
# apart); every node they add counts in their part.
STAGES = ("pretrain", "transfer", "catalogue")


def node_groups() -> dict[str, set[str]]:
    """Which nodes make each part of the run (the metric nodes are tracking: they log to
    MLflow)."""
    from fashion_transfer.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    data = {n.name for n in pipelines["split"].nodes}
    metrics = {
        "pretrain_epoch_metrics",
        "transfer_epoch_metrics",
        "catalogue_epoch_metrics",
        "test_metric_values",
    }
    stage = {name: {n.name for n in pipelines[name].nodes} - data - metrics for name in STAGES}
    scratch = {"train_scratch_baseline"}
    return {
        "data": data,
        "pretrain": stage["pretrain"],
        "transfer": stage["transfer"] - scratch,
        "scratch baseline": scratch,
        "catalogue": stage["catalogue"],
        "evaluation": {n.name for n in pipelines["evaluation"].nodes} - data - metrics,
        "tracking: metrics": metrics,
    }


def split_run(stamps: dict, started: float, finished: float, groups: dict) -> tuple[dict, dict]:
    """The run's parts and each node's seconds, from framework/timing.py's stamps. Stamps of a
    project from before those (`--against-project`: [name, start] per node, no spans) give
    the same parts, with the MLflow parameters in the nodes and registration in the run end."""
    nodes = [entry if len(entry) == 3 else [*entry, entry[1]] for entry in stamps["nodes"]]
    pipeline_finished = stamps.get("pipeline_finished", stamps["last_saved"])
    ends = [start for _, start, _ in nodes[1:]] + [pipeline_finished]
    node_seconds = {name: end - done for (name, _, done), end in zip(nodes, ends, strict=True)}
    spans: dict[str, float] = {}
    for name, span_start, span_end in stamps.get("spans", []):
        spans[name] = spans.get(name, 0.0) + span_end - span_start
    run_started = stamps.get("run_started", stamps["pipeline_started"])
    onnx = spans.get("onnx export", 0.0)
    parity = spans.get("parity check", 0.0)
    registration = spans.get("registration", 0.0)
    parts = dict.fromkeys(PARTS, 0.0)
    # Start-up: the process up to the pipeline's hooks, and Kedro's runner before the first node.
    parts["start-up"] = stamps["pipeline_started"] - started + nodes[0][1] - run_started
    for group, names in groups.items():
        parts[group] = sum(seconds for name, seconds in node_seconds.items() if name in names)
    parts["tracking: run start"] = run_started - stamps["pipeline_started"]
    parts["tracking: parameters"] = sum(done - start for _, start, done in nodes)
    parts["tracking: ONNX export"] = onnx
    parts["tracking: ONNX parity check"] = parity
    # The registration span holds the ONNX export and the parity check where it marks them.
    parts["tracking: registration"] = registration - onnx - parity if registration else 0.0
    parts["tracking: run end"] = finished - pipeline_finished - max(registration, onnx)
    unassigned = set(node_seconds) - set().union(*groups.values())
    if unassigned:
        parts["other nodes"] = sum(node_seconds[name] for name in unassigned)
    return parts, node_seconds


def run_benchmark(
    params: str, device: str, project: Path = PROJECT, new_store: bool = False
) -> dict:
    """A full `kedro run --params PARAMS` in a scratch copy of `project`, timed by its
    framework/timing.py hooks; the data is copied in so the run does not download it. The
    MLflow store is made before the timed run (as after any first run), and its making timed
    apart, unless `new_store`."""
    groups = node_groups()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for part in ("conf", "src"):
            shutil.copytree(
                project / part, root / part, ignore=shutil.ignore_patterns("local", "__pycache__")
            )
        (root / "conf" / "local").mkdir()
        shutil.copy(project / "pyproject.toml", root)
        shutil.copytree(PROJECT / "data" / "01_raw", root / "data" / "01_raw")
        stamps_file = root / "timings.json"
        env = {
            **os.environ,
            "FASHION_TRANSFER_TIMINGS": str(stamps_file),
            "KEDRO_DISABLE_TELEMETRY": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            # The copy's code, not an installed or another checkout's fashion_transfer.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(root / "src"), os.environ.get("PYTHONPATH")) if p
            ),
        }
        for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
            env.pop(variable, None)
        store_seconds = None
        if not new_store:
            started = time.time()
            subprocess.run(
                [sys.executable, "-c", STORE_SCRIPT],
                cwd=root,
                env=env,
                check=True,
                capture_output=True,
            )
            store_seconds = time.time() - started
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

    parts, node_seconds = split_run(stamps, started, finished, groups)
    collections = stamps.get("collections", [])
    return {
        "params": params,
        "device": device,
        "code": code_version(project),
        "wall_seconds": finished - started,
        "fixed_seconds": sum(parts[part] for part in FIXED_PARTS),
        "new_store_seconds": store_seconds,
        # Inside the parts: the garbage collector's longer passes after start-up, and those
        # during the registration and the run's end.
        "collection_seconds": sum(end - start for _, start, end in collections),
        "collection_seconds_after_pipeline": sum(
            end - start for _, start, end in collections if start >= stamps["pipeline_finished"]
        ),
        "parts_seconds": parts,
        "node_seconds": node_seconds,
        "val_accuracy": {name: section["val_accuracy"] for name, section in metrics.items()},
        "test_accuracy": {name: section["test_accuracy"] for name, section in metrics.items()},
        "reports": {name: _report(section) for name, section in metrics.items()},
    }


# What the README's second results table shows of each model (metrics.json's names).
REPORTED = (
    "photo_accuracy",
    "photo_items_found",
    "photo_ece",
    "photo_recognised",
    "test_ece_uncalibrated",
    "test_ece",
    "test_recognised",
    "ood",
)


def _report(section: dict) -> dict:
    return {key: section[key] for key in REPORTED if key in section}


def median_parts(runs: list[dict]) -> dict[str, float]:
    return {
        part: statistics.median(run["parts_seconds"].get(part, 0.0) for run in runs)
        for part in runs[0]["parts_seconds"]
    }


def code_version(project: Path) -> str:
    """The commit the timed code is at (its hash, `-dirty` with changes), not its path: a
    result file names the code, never the machine's folders."""
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--exclude=*"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or "not a git checkout"


def print_runs(figures: dict, rounds: int) -> None:
    """One column per side (the median over the rounds), the ratio where there are two."""
    sides = [which for which in ("against", "run") if which in figures]
    runs = figures.get("rounds", {which: [figures[which]] for which in sides})
    parts = {which: median_parts(runs[which]) for which in sides}
    for which in sides:
        run = figures[which]
        print(f"\n{which}: kedro run --params {run['params']},runtime.device={run['device']}")
        print(f"  code: {run.get('code', run.get('project'))}")
        for split in ("val", "test"):
            accuracies = run[f"{split}_accuracy"].items()
            print(f"  {split} accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in accuracies))
    medians = "median of " + (f"{rounds} rounds" if rounds > 1 else "1 round")
    print(f"\nseconds ({medians})" + "".join(f"{which:>12}" for which in sides), end="")
    print(f"{'ratio':>9}" if len(sides) == 2 else "")
    names = list(dict.fromkeys(name for which in sides for name in parts[which]))
    rows = [(name, [parts[which].get(name, 0.0) for which in sides]) for name in names]
    for label, key in (
        ("fixed (start-up, data, tracking)", "fixed_seconds"),
        ("wall", "wall_seconds"),
        ("of which garbage collection", "collection_seconds"),
        ("  in registration and run end", "collection_seconds_after_pipeline"),
    ):
        # None where a side's runs do not have it (a project from before the stamp)
        rows.append(
            (
                label,
                [
                    statistics.median(run[key] for run in runs[which])
                    if all(key in run for run in runs[which])
                    else None
                    for which in sides
                ],
            )
        )
    for name, values in rows:
        known = len(values) == 2 and None not in values and values[0] > 0
        ratio = f"{values[1] / values[0]:9.3f}" if known else ""
        cells = "".join(f"{v:12.1f}" if v is not None else f"{'n/a':>12}" for v in values)
        print(f"  {name:<34}" + cells + ratio)
    stores = [run["new_store_seconds"] for run in runs[sides[-1]]]
    if stores[0] is not None:
        print(
            f"  (not in the runs: making the new MLflow store before each, "
            f"{statistics.median(stores):.1f} s; --new-store times it inside the run)"
        )


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
        "--against-project",
        type=Path,
        default=None,
        help="the second run runs that checkout's code (conf/ and src/), e.g. the code before "
        "a change; its --params are --against, else the first run's",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --against: runs of each, alternating"
    )
    parser.add_argument(
        "--new-store",
        action="store_true",
        help="each run makes its MLflow store itself, timed in its start-up (as a first run)",
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
        stage, params = load_stage_data(args.preset)
        figures["loop"] = loop_benchmark(stage, params, args.repeats)
    params = ",".join(p for p in (f"preset={args.preset}", args.params) if p)
    against = args.against if args.against is not None else None
    if args.against_project is not None and against is None:
        against = params
    if not args.skip_run and against is None:
        figures["run"] = run_benchmark(params, args.device, new_store=args.new_store)
    if not args.skip_run and against is not None:
        sides = {
            "run": (params, PROJECT),
            "against": (against, (args.against_project or PROJECT).resolve()),
        }
        runs: dict[str, list[dict]] = {"run": [], "against": []}
        for round_ in range(args.rounds):  # against first in even rounds, last in odd ones
            order = ("against", "run") if round_ % 2 == 0 else ("run", "against")
            for which in order:
                side_params, project = sides[which]
                runs[which].append(run_benchmark(side_params, args.device, project, args.new_store))
        figures["run"], figures["against"] = runs["run"][0], runs["against"][0]
        figures["rounds"] = runs
        for key in ("wall", "fixed"):
            figures[f"{key}_time_ratio"] = statistics.median(
                ours[f"{key}_seconds"] / theirs[f"{key}_seconds"]
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
    if "run" in figures:
        print_runs(figures, args.rounds)
    if "wall_time_ratio" in figures:
        print(
            f"\nrun / against, median of the per-round ratios: wall "
            f"{figures['wall_time_ratio']:.3f}, fixed parts {figures['fixed_time_ratio']:.3f}"
        )
    print(f"\nFigures written to {args.output}")


if __name__ == "__main__":
    main()
