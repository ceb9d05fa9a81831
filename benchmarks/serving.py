"""Where a request's time goes: the registered model in process (PyTorch eager, its checkpoint;
ONNX Runtime, its graph) and served over HTTP by `make serve` (`mlflow models serve`), in one
run, for 1 image and for batches of 32 and 256, at 1 and 8 concurrent clients. Request bodies
are encoded before the clock starts; every client keeps one connection open. Figures are
images per second and latency percentiles in milliseconds.

    python benchmarks/serving.py --output benchmarks/serving.json

Run it from the project root after a `kedro run` registered a champion (`--model-uri` for
another). Served formats: `pictures` (PNG files, base64 in a dataframe_split table: the format
the README recommends for batches), `pixels` (uint8 values as JSON arrays) and `floats` (0-1
values as JSON arrays, what the project's README showed before)."""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import pickle
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

BATCHES = (1, 32, 256)
CLIENTS = (1, 8)


def test_images(count: int = 256) -> np.ndarray:
    from fashion_transfer.framework.paths import project_root

    data = project_root() / "data" / "05_model_input" / "transfer_data.pkl"
    return pickle.loads(data.read_bytes())["test_images"][:count]


def percentiles(seconds: list[float]) -> dict:
    ms = sorted(1000 * s for s in seconds)
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2),
    }


def timed(call, batch: int, seconds: float, minimum: int = 20) -> dict:
    """Call `call()` repeatedly for about `seconds`: images/s and latency."""
    call()  # warm-up
    latencies, started = [], time.perf_counter()
    while time.perf_counter() - started < seconds or len(latencies) < minimum:
        begin = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - begin)
    total = time.perf_counter() - started
    return {"images_per_s": round(batch * len(latencies) / total, 1), **percentiles(latencies)}


def in_process(model_uri: str, images: np.ndarray, seconds: float) -> list[dict]:
    import mlflow
    import onnxruntime
    import torch

    from fashion_transfer.mlflow.logged_model import read_checkpoint
    from fashion_transfer.served_model.classifier import onnx_session

    folder = Path(mlflow.artifacts.download_artifacts(model_uri))
    session = onnx_session(str(folder / "artifacts" / "model.onnx"))
    network = read_checkpoint(model_uri).eval()
    rows = []
    for batch in BATCHES:
        pixels = images[:batch].astype(np.float32) / 255
        tensor = torch.from_numpy(pixels).unsqueeze(1)

        def eager(tensor=tensor):
            with torch.inference_mode():
                torch.softmax(network(tensor), dim=1)

        def ort(pixels=pixels):
            session.run(None, {"images": pixels})

        for name, call in (("PyTorch eager", eager), ("ONNX Runtime", ort)):
            rows.append({"where": "in process", "how": name, "batch": batch, "clients": 1,
                         **timed(call, batch, seconds)})  # fmt: skip
    del onnxruntime
    return rows


def bodies(images: np.ndarray, batch: int) -> dict[str, bytes]:
    from PIL import Image

    chosen = images[:batch]
    encoded = []
    for image in chosen:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return {
        "pictures": json.dumps(
            {"dataframe_split": {"columns": ["image"], "data": [[text] for text in encoded]}}
        ).encode(),
        "pixels": json.dumps({"inputs": chosen.tolist()}).encode(),
        "floats": json.dumps({"inputs": (chosen / 255.0).round(6).tolist()}).encode(),
    }


def served(
    port: int, images: np.ndarray, seconds: float, workers: int, batches: list[int]
) -> list[dict]:
    rows = []
    for batch in batches:
        for form, body in bodies(images, batch).items():
            for clients in CLIENTS:
                figures = load(port, body, batch, clients, seconds)
                rows.append({"where": "served", "how": form, "batch": batch, "clients": clients,
                             "workers": workers, **figures})  # fmt: skip
    return rows


def load(port: int, body: bytes, batch: int, clients: int, seconds: float) -> dict:
    headers = {"Content-Type": "application/json"}

    def client(_):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        latencies, deadline = [], time.perf_counter() + seconds
        while time.perf_counter() < deadline or not latencies:
            begin = time.perf_counter()
            connection.request("POST", "/invocations", body, headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            latencies.append(time.perf_counter() - begin)
        connection.close()
        return latencies

    client(None)  # warm-up, one client for a moment
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [x for found in pool.map(client, range(clients)) for x in found]
    total = time.perf_counter() - started
    return {"images_per_s": round(batch * len(latencies) / total, 1), **percentiles(latencies)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", default="models:/fashion-mnist-transfer@champion")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads per worker")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    from fashion_transfer.mlflow.store import require_model
    from fashion_transfer.programs.processes import (
        free_port,
        start_model_server,
        stop_server,
        wait_until_up,
    )
    from fashion_transfer.served_model.classifier import THREADS_VARIABLE

    store = require_model(args.model_uri)
    images = test_images()
    rows = in_process(args.model_uri, images, args.seconds)
    for workers in args.workers:
        port = free_port()
        log = Path(f".serve-{port}.log")
        env = {**os.environ, "MLFLOW_TRACKING_URI": store}
        if args.threads:
            env[THREADS_VARIABLE] = str(args.threads)
        server = start_model_server(args.model_uri, port, env, log, workers=workers)
        try:
            wait_until_up(f"http://127.0.0.1:{port}", server, 180, log)
            rows += served(port, images, args.seconds, workers, args.batches)
        finally:
            stop_server(server)
            log.unlink(missing_ok=True)
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "model_uri": args.model_uri, "rows": rows}  # fmt: skip
    print(table(rows))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2))
    return 0


def table(rows: list[dict]) -> str:
    lines = ["| where | how | workers | batch | clients | images/s | p50 ms | p99 ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['where']} | {row['how']} | {row.get('workers', '')} | {row['batch']} | "
            f"{row['clients']} | {row['images_per_s']:,.0f} | {row['p50_ms']} | {row['p99_ms']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
