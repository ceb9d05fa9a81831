"""The served champion (`make serve`'s program on the small run's model) against hostile input:
every picture of the fuzzing corpus and mutants of it answered 200 or 400, never a 5xx or a
traceback in its log; bodies over the limit refused with 413 before they are read, announced
or sent in chunks; and a burst of large uploads that leaves its memory bounded while an
ordinary request is answered."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from fashion_transfer.programs.processes import (
    free_port,
    start_model_server,
    stop_server,
    wait_until_up,
)
from fashion_transfer.programs.serve import MAX_REQUEST_MB
from tests.e2e.helpers import kedro_env, store
from tests.e2e.uploads import answer_to_headers_alone, burst, chunked_post
from tests.picture_fuzzing import mutant, seed_corpus

CHAMPION = "models:/fashion-mnist-transfer@champion"
FOUND = Path(__file__).parents[1] / "fixtures" / "pictures-found-by-fuzzing"
LIMIT = MAX_REQUEST_MB * 2**20


@pytest.fixture(scope="module")
def served(project, first_run, tmp_path_factory):
    """The champion as `make serve` serves it, one worker: (port, log, process)."""
    log = tmp_path_factory.mktemp("serve-limits") / "serve.log"
    port = free_port()
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": store(project)}
    server = start_model_server(CHAMPION, port, env, log, project)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server, 120, log)
        yield port, log, server
    finally:
        stop_server(server)


def _post(port: int, body: bytes, timeout: float = 60) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=body, method="POST"
    )
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _one_picture(data: bytes) -> bytes:
    text = base64.b64encode(data).decode()
    return json.dumps({"dataframe_split": {"columns": ["image"], "data": [[text]]}}).encode()


def _one_image() -> bytes:
    return json.dumps({"inputs": [[[0] * 28] * 28]}).encode()


def test_hostile_pictures_get_a_400_naming_them_never_a_server_error(served):
    port, log, _ = served
    pictures = dict(seed_corpus())  # the 49 MP bombs included: a few seconds each
    pictures |= {path.name: path.read_bytes() for path in sorted(FOUND.iterdir())}
    pictures |= {f"mutant {index}": mutant(5, index)[1] for index in range(80)}
    statuses = Counter()
    for name, data in pictures.items():
        status, body = _post(port, _one_picture(data))
        statuses[status] += 1
        assert status in (200, 400), (name, status, body[:500])
        if status == 400:
            assert "\nError: picture 0: " in json.loads(body)["message"], (name, body[:500])
    assert statuses[200] and statuses[400], statuses
    assert "Traceback" not in log.read_text()


def test_a_body_over_the_limit_is_refused_before_it_is_read(served):
    port, log, _ = served
    status, body = answer_to_headers_alone(port, "/invocations", LIMIT + 1, "application/json")
    assert status == 413, body
    assert json.loads(body)["message"] == (
        f"The request body is {(LIMIT + 1) / 2**20:.1f} MB; requests to the served model take "
        f"at most {MAX_REQUEST_MB} MB. Send less in each request."
    )

    def zeros():  # a JSON array that never ends within the limit
        yield b'{"inputs": ['
        for _ in range(MAX_REQUEST_MB + 8):
            yield b"0," * 2**19
        yield b"0]}"

    status, body = chunked_post(port, "/invocations", zeros, "application/json")
    assert status == 413 and f"passed {MAX_REQUEST_MB} MB before its end" in body, body[:300]

    def small():  # the same ordinary request, in chunks
        yield _one_image()[:100]
        yield _one_image()[100:]

    status, body = chunked_post(port, "/invocations", small, "application/json")
    assert status == 200 and len(json.loads(body)["predictions"]) == 1, body[:300]
    assert _post(port, _one_image())[0] == 200
    assert "Traceback" not in log.read_text()


def test_a_burst_of_large_uploads_keeps_memory_bounded_and_others_answered(served):
    """Six uploads of 110 MB at once, without a length: each refused after at most the
    limit, read one at a time, the buffer given back; an ordinary request answered
    meanwhile. (Left to Starlette's counting, the same burst held 600 MB, kept after it.)"""
    port, log, server = served

    def zeros():
        yield b'{"inputs": ['
        for _ in range(110):
            yield b"0," * 2**19
        yield b"0]}"

    result = burst(
        server.pid,
        uploads=6,
        upload=lambda: chunked_post(port, "/invocations", zeros, "application/json"),
        other=lambda: _post(port, _one_image())[0],
    )
    assert [status for status, _ in result.answers] == [413] * 6, result.answers
    assert result.other[0] == 200
    # One body of at most 100 MB held at a time (and its buffer's growth): not six.
    assert result.peak_mb - result.base_mb < 2.5 * MAX_REQUEST_MB, result
    assert "Traceback" not in log.read_text()
