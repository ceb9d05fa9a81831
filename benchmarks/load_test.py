"""Bounded load test of the served model, on 127.0.0.1 only.

Starts `make serve`'s server for the transfer champion on a free local port (or uses --url),
sends --requests requests from --clients concurrent clients, mixing good batches of real test
images (pixel arrays and PNG pictures) with bad requests (wrong shape, NaN, out-of-range
values, an empty batch, invalid JSON, a wrong content type, a file that is not a picture, text
that is not base64) and hostile pictures (tests/picture_fuzzing.py: headers announcing huge
or zero sizes, huge palettes and frame counts, a 50 MB text chunk, loops of TIFF pages, the
inputs the fuzzer found, mutants), then stops the server and reports throughput, p50/p99
latency and the answers by status. Exits 1 if any answer was a 5xx or none came.

    python benchmarks/load_test.py --requests 5000 --clients 8 --output benchmarks/load-test.json

Run it from the project root after a `kedro run` has registered a champion.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import pickle
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fashion_transfer.framework.paths import project_root
from fashion_transfer.programs.processes import (
    free_port,
    start_model_server,
    stop_server,
    wait_until_up,
)

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # tests/picture_fuzzing.py, beside the installed package
HOSTILE = (
    "header-", "huge-", "bits-0", "ifd-loop", "exif-9", "exif-65535", "bad-icc", "frames",
    "nan",
)  # fmt: skip


def _pictures(images) -> bytes:
    """Images as PNG files, base64 in a dataframe_split table."""
    from PIL import Image

    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        encoded.append(buffer.getvalue())
    return _encoded(encoded)


def _encoded(pictures: list[bytes]) -> bytes:
    data = [[base64.b64encode(picture).decode()] for picture in pictures]
    return json.dumps({"dataframe_split": {"columns": ["image"], "data": data}}).encode()


def hostile_pictures() -> list[bytes]:
    """Crafted pictures of the fuzzing corpus that decode small (its 49 MP bombs are left to
    the fuzz tests: each takes seconds), the inputs the fuzzer found, 20 mutants."""
    from tests.picture_fuzzing import mutant, seed_corpus

    corpus = seed_corpus()
    chosen = [data for name, data in corpus.items() if any(mark in name for mark in HOSTILE)]
    found = PROJECT / "tests" / "fixtures" / "pictures-found-by-fuzzing"
    chosen += [path.read_bytes() for path in sorted(found.iterdir())]
    mutants = (mutant(0, index) for index in range(200))
    chosen += [data for name, data in mutants if "49mp" not in name][:20]
    return chosen


def request_mix() -> list[tuple[str, bytes, str]]:
    """(kind, body, content type) requests; 4 good for each bad one, in both forms."""
    data_file = project_root() / "data" / "05_model_input" / "transfer_data.pkl"
    images = pickle.loads(data_file.read_bytes())["test_images"][:64]
    good = [
        ("good", json.dumps({"inputs": images[i : i + size].tolist()}).encode(), "application/json")
        for i, size in ((0, 1), (1, 4), (5, 16), (21, 1))
    ] + [
        ("good pictures", _pictures(images[i : i + size]), "application/json")
        for i, size in ((0, 1), (1, 4), (5, 16), (21, 1))
    ]
    not_a_picture = base64.b64encode(b"shirt, blue, size 40").decode()
    unreadable = {"dataframe_split": {"columns": ["image"], "data": [[not_a_picture]]}}
    nan_image = json.dumps({"inputs": [[[float("nan")] * 28] * 28]}).encode()  # NaN literals
    bad = [
        ("wrong shape", json.dumps({"inputs": [[1, 2, 3]]}).encode(), "application/json"),
        ("NaN", nan_image, "application/json"),
        (
            "out of range",
            json.dumps({"inputs": [[[300.0] * 28] * 28]}).encode(),
            "application/json",
        ),
        ("empty batch", json.dumps({"inputs": []}).encode(), "application/json"),
        ("invalid JSON", b"{not json", "application/json"),
        ("wrong content type", good[0][1], "text/plain"),
        ("not a picture", json.dumps(unreadable).encode(), "application/json"),
        ("not base64", json.dumps({"inputs": {"image": ["%%%"]}}).encode(), "application/json"),
    ]
    hostile = [
        ("hostile picture", _encoded([data]), "application/json") for data in hostile_pictures()
    ]
    bad = bad * max(1, len(hostile) // len(bad)) + hostile  # as many ordinary bad as hostile
    return good * (len(bad) * 4 // len(good)) + bad


def client(host: str, port: int, jobs: list, stop_at: float) -> list[tuple[str, int, float]]:
    """One keep-alive connection sending its share of the requests, in order."""
    results = []
    connection = http.client.HTTPConnection(host, port, timeout=60)
    for kind, body, content_type in jobs:
        if time.monotonic() > stop_at:
            break
        started = time.perf_counter()
        try:
            connection.request("POST", "/invocations", body, {"Content-Type": content_type})
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=60)
            status = 0  # no answer at all
        results.append((kind, status, time.perf_counter() - started))
    connection.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-uri", default="models:/fashion-mnist-transfer@champion")
    parser.add_argument(
        "--url", help="an already running server on 127.0.0.1, e.g. http://127.0.0.1:5001"
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending after this")
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks" / "load-test.json")
    args = parser.parse_args()

    server, url = None, args.url
    log_path = args.output.with_suffix(".server.log")
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ}
        env.setdefault(
            "MLFLOW_TRACKING_URI", f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"
        )
        server = start_model_server(args.model_uri, port, env, log_path, workers=2)
    host, port = url.removeprefix("http://").split(":")
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("the load test only targets a server on this machine (127.0.0.1)")
    try:
        try:
            wait_until_up(url, server, 120, log_path)
        except RuntimeError as error:
            sys.exit(str(error))
        mix = request_mix()
        jobs = [mix[i % len(mix)] for i in range(args.requests)]
        shares = [jobs[i :: args.clients] for i in range(args.clients)]
        stop_at = time.monotonic() + args.max_seconds
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = [
                r
                for part in pool.map(lambda s: client(host, int(port), s, stop_at), shares)
                for r in part
            ]
        elapsed = time.perf_counter() - started
    finally:
        if server is not None:
            stop_server(server)

    latencies = sorted(seconds for _, _, seconds in results)
    by_kind = Counter((kind, status) for kind, status, _ in results)
    report = {
        "url": url,
        "requests": len(results),
        "clients": args.clients,
        "seconds": elapsed,
        "requests_per_second": len(results) / elapsed,
        "latency_ms": {
            "p50": 1000 * statistics.median(latencies),
            "p99": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        },
        "status_counts": dict(Counter(str(status) for _, status, _ in results)),
        "by_kind": {f"{kind} -> {status}": n for (kind, status), n in sorted(by_kind.items())},
        "server_errors_5xx": sum(1 for _, status, _ in results if status >= 500),
        "no_answer": sum(1 for _, status, _ in results if status == 0),
    }
    args.output.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    if report["server_errors_5xx"] or report["no_answer"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
