"""A registered version outside the project, in a fresh virtual environment: the "Run it
anywhere" snippet of docs/serving.md (the README points there) with onnxruntime, numpy,
Pillow and OpenCV only, seeing the same pixels of a photo as the project's conversion; then
the model served by `mlflow models serve` from nothing but its own requirements.txt (no
PyTorch, no project). The packages come from the package registry, pinned to the versions
the model names."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image

from fashion_transfer.photos import render_photos
from fashion_transfer.programs.processes import free_port, start_server, stop_server, wait_until_up
from fashion_transfer.served_model.pictures import open_picture, to_model_image
from tests.conftest import PROJECT_ROOT
from tests.e2e.helpers import kedro_env, store

CHAMPION = "models:/fashion-mnist-catalogue@champion"
# What the model's own conversion sees of a picture, printed as JSON, in the fresh environment.
SEEN = """import json, sys
sys.path.insert(0, "model/code")
from served_model.pictures import open_picture, to_model_image
with open(sys.argv[1], "rb") as file:
    print(json.dumps(to_model_image(open_picture(file.read())).tolist()))
"""


def _manual_snippet() -> str:
    """The first Python block of docs/serving.md's "Run it anywhere" section, as a user pastes
    it."""
    manual = (PROJECT_ROOT / "docs" / "serving.md").read_text()
    section = manual.split("## Run it anywhere", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL)[1]


@pytest.fixture(scope="module")
def model(project, first_run, tmp_path_factory):
    """The champion as a folder (what `mlflow artifacts download` gives), and what it answers
    for its own example pictures in the project's environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store(project))
        folder = Path(
            mlflow.artifacts.download_artifacts(CHAMPION, dst_path=tmp_path_factory.mktemp("m"))
        )
        examples = sorted((folder / "artifacts" / "examples").glob("*.png"))
        pictures = [path.read_bytes() for path in examples]
        expected = mlflow.pyfunc.load_model(str(folder)).predict(pictures)
    return folder, examples, expected


def _pip(venv: Path, *args: str) -> None:
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args],
        check=True,
        capture_output=True,
        timeout=600,
    )


def test_a_version_runs_and_serves_in_a_fresh_environment(model, tmp_path):
    folder, examples, expected = model
    requirements = (folder / "requirements.txt").read_text().split()
    pins = {line.split("==")[0]: line for line in requirements}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)

    # 1. onnxruntime, numpy, Pillow and OpenCV only: the manual's snippet on each example
    # picture, with the model folder as `mlflow artifacts download` gives it.
    _pip(
        venv, *(pins[name] for name in ("onnxruntime", "numpy", "pillow", "opencv-python-headless"))
    )
    work = tmp_path / "phone"
    shutil.copytree(folder, work / "model")
    (work / "classify.py").write_text(_manual_snippet())
    for path, class_name in zip(examples, expected["class_name"], strict=True):
        answer = subprocess.run(
            [str(venv / "bin" / "python"), "classify.py", str(path)],
            cwd=work, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert answer.stdout.strip().rsplit(" ", 1)[0] == class_name, answer
    # The snippet's conversion sees the very pixels of a photo that the project's does.
    photo = work / "photo.jpg"
    item = np.asarray(Image.open(examples[0]))
    photo.write_bytes(render_photos(item[None], {"seed": 3})[0])
    seen = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SEEN, str(photo)],
        cwd=work, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(seen.stdout) == to_model_image(open_picture(photo.read_bytes())).tolist()

    # 2. The model's own requirements: `mlflow models serve`, pictures and pixels over HTTP.
    _pip(venv, "-r", str(folder / "requirements.txt"))
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert not {"torch", "fashion-transfer", "mlflow", "kedro"} & installed, installed
    port = free_port()
    env = {key: value for key, value in kedro_env().items() if not key.startswith("MLFLOW_")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"  # uvicorn from the fresh environment
    command = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(folder)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    log = tmp_path / "serve.log"
    server = start_server(command, log, env, tmp_path)
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server, 120, log)
        pictures = [base64.b64encode(path.read_bytes()).decode() for path in examples]
        body = {"dataframe_split": {"columns": ["image"], "data": [[p] for p in pictures]}}
        served = _post(url, body)
        assert [row["class_name"] for row in served] == list(expected["class_name"])
        np.testing.assert_allclose(
            [row["confidence"] for row in served], expected["confidence"], atol=1e-6
        )
        pixels = [np.asarray(Image.open(path)).tolist() for path in examples]
        assert [row["class_name"] for row in _post(url, {"inputs": pixels})] == list(
            expected["class_name"]
        )
        with pytest.raises(urllib.error.HTTPError) as error:
            _post(url, {"inputs": [[1, 2, 3]]})
        assert error.value.code == 400
    finally:
        stop_server(server)
    assert "torch" not in log.read_text()


def _post(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["predictions"]
