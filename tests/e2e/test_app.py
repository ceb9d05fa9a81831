"""`make app` on the small run's champion (helpers.py): started as the Makefile starts it, then
used as a web page or a phone app uses it (multipart POST /predict), through Gradio's own
client, and as a person uses the page in Chromium (Playwright): uploaded test pictures, a
sketch, a file that is not a picture, and not one request that leaves 127.0.0.1."""

from __future__ import annotations

import pickle
from urllib.parse import urlparse

import httpx
import mlflow
import numpy as np
import pytest
from PIL import Image

from fashion_transfer.programs.processes import free_port, start_server, stop_server, wait_until_up
from tests.e2e.helpers import kedro_env, make, page_of, store, without_make

CHAMPION = "models:/fashion-mnist-transfer@champion"


@pytest.fixture(scope="module")
def app(project, first_run, tmp_path_factory):
    """The web app on the champion, as `make app` starts it, and what it answers with."""
    log = tmp_path_factory.mktemp("app") / "app.log"
    port = free_port()
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": store(project)}
    server = start_server(make("app", PORT=port), log, env, project)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server, 120, log, path="/health")
        yield url, log
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def pictures(project, app, tmp_path_factory):
    """Test pictures of two classes that the champion classifies right, as PNG files, with
    their class names; and the champion's version."""
    data = pickle.loads((project / "data" / "05_model_input" / "transfer_data.pkl").read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store(project))
        predicted = mlflow.pyfunc.load_model(CHAMPION).predict(data["test_images"][:200])
        version = mlflow.MlflowClient().get_model_version_by_alias(
            "fashion-mnist-transfer", "champion"
        )
    folder = tmp_path_factory.mktemp("pictures")
    chosen = {}
    for index, (label, answer) in enumerate(
        zip(data["test_labels"][:200], predicted["class_name"], strict=True)
    ):
        name = data["class_names"][label]
        if answer == name and name not in chosen and predicted["confidence"][index] > 0.7:
            path = folder / f"{name.replace('/', ' or ')}.png"
            Image.fromarray(data["test_images"][index]).save(path)
            chosen[name] = path
        if len(chosen) == 2:
            break
    assert len(chosen) == 2, "the champion classifies too few test pictures right"
    return chosen, str(version.version)


def test_predict_takes_a_multipart_upload_and_names_the_model(app, pictures):
    url, _ = app
    chosen, version = pictures
    files = [("image", (path.name, path.read_bytes(), "image/png")) for path in chosen.values()]
    files.append(("image", ("notes.png", b"not a picture", "image/png")))
    bad = httpx.post(f"{url}/predict", files=files, timeout=60)
    assert bad.status_code == 400 and "notes.png: not a picture" in bad.json()["error"]
    answer = httpx.post(f"{url}/predict", files=files[:2], timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == {
        "uri": CHAMPION,
        "name": "fashion-mnist-transfer",
        "version": version,
        "alias": "champion",
        "val_accuracy": pytest.approx(body["model"]["val_accuracy"]),
    }
    assert [p["class_name"] for p in body["predictions"]] == list(chosen)
    assert [p["file"] for p in body["predictions"]] == [path.name for path in chosen.values()]
    health = httpx.get(f"{url}/health", timeout=30).json()
    assert health["status"] == "ok" and health["model"]["version"] == version


def test_gradio_s_client_classifies_a_photo(app, pictures):
    from gradio_client import Client, handle_file

    url, _ = app
    chosen, version = pictures
    name, path = next(iter(chosen.items()))
    seen, classes, answered = Client(url, verbose=False).predict(
        handle_file(str(path)), api_name="/classify_photo"
    )
    assert classes["label"] == name
    assert f"fashion-mnist-transfer** version {version}" in answered
    shown = np.asarray(Image.open(seen))  # the 28x28 image, enlarged pixel by pixel
    assert shown.shape[:2] == (224, 224)
    original = np.asarray(Image.open(path))
    assert np.array_equal(shown[::8, ::8, 0] if shown.ndim == 3 else shown[::8, ::8], original)


def test_the_page_classifies_photos_and_a_sketch_and_says_what_is_not_a_picture(
    app, pictures, browser, tmp_path
):
    url, _ = app
    chosen, version = pictures
    text_file = tmp_path / "notes.txt"
    text_file.write_text("shirt, blue, size 40\n")
    disguised = tmp_path / "notes.png"  # named as a picture, so that the browser sends it
    disguised.write_text("shirt, blue, size 40\n")
    with page_of(browser, "web-app") as page:
        hosts = set()
        page.on("request", lambda request: hosts.add(urlparse(request.url).hostname))
        page.goto(url)
        answered = page.locator("#answered")
        answered.get_by_text(f"version {version}").wait_for(timeout=30_000)
        upload = page.locator("input[type=file]").first
        for name, path in chosen.items():
            upload.set_input_files(str(path))
            page.locator("#classes").get_by_text(name).first.wait_for(timeout=30_000)
            page.get_by_role("button", name="Remove Image").first.click()
        # The model's own test pictures, one click away.
        page.get_by_text("Test pictures").scroll_into_view_if_needed()
        page.locator("button.gallery-item").first.click()
        page.locator("#seen img").wait_for(timeout=30_000)
        page.get_by_role("button", name="Remove Image").first.click()
        upload.set_input_files(str(text_file))  # the browser refuses it itself
        page.get_by_text("Invalid file type: notes.txt").wait_for(timeout=30_000)
        upload.set_input_files(str(disguised))  # reaches the app, which says why
        answered.get_by_text("not a picture the model can read").wait_for(timeout=30_000)

        page.get_by_role("tab", name="Draw").click()
        page.get_by_role("button", name="Brush").click()
        canvas = [item for item in page.locator("canvas").all() if item.is_visible()][-1]
        box = canvas.bounding_box()
        x, y = box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.3
        page.mouse.move(x, y)
        page.mouse.down()
        for step in range(1, 21):  # a stroke down and across, like a boot's outline
            page.mouse.move(x + step * 4, y + step * 8)
        page.mouse.up()
        page.locator("#seen img").wait_for(timeout=30_000)
        answered.get_by_text(f"version {version}").wait_for(timeout=30_000)
        assert page.locator("#classes").inner_text().strip()
    assert hosts == {"127.0.0.1"}, hosts


def test_the_app_before_anything_is_registered_says_what_to_run(project, tmp_path):
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    log = tmp_path / "app.log"
    server = start_server(make("app", PORT=free_port()), log, env, project)
    try:
        assert server.wait(timeout=120) != 0
    finally:
        stop_server(server)
    output = without_make(log.read_text())
    assert output.startswith("Error: the MLflow registry at ") and "make run" in output, output
    assert "Traceback" not in output
