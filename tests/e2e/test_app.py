"""`make app` on the small run's champion (helpers.py): started as the Makefile starts it, then
used as a web page or a phone app uses it (multipart POST /predict), through Gradio's own
client, and as a person uses the page in Chromium (Playwright): uploaded test pictures, a
sketch, a file that is not a picture, and not one request that leaves 127.0.0.1."""

from __future__ import annotations

import io
import json
import pickle
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin, urlparse

import httpx
import mlflow
import numpy as np
import pytest
from PIL import Image

from fashion_transfer import outlier_sets
from fashion_transfer.programs.app.api import MAX_REQUEST_BYTES, PAGE_REQUEST_BYTES
from fashion_transfer.programs.app.page import NOT_RECOGNISED
from fashion_transfer.programs.processes import free_port, start_server, stop_server, wait_until_up
from tests.e2e.helpers import kedro_env, make, page_of, store, without_make
from tests.e2e.uploads import answer_to_headers_alone, burst, chunked_post
from tests.picture_fuzzing import mutant, seed_corpus

FOUND = Path(__file__).parents[1] / "fixtures" / "pictures-found-by-fuzzing"

CHAMPION = "models:/fashion-mnist-catalogue@champion"
NAME = "fashion-mnist-catalogue"


@pytest.fixture(scope="module")
def app_server(project, first_run, tmp_path_factory):
    """The web app on the champion, as `make app` starts it: its address, its log and the
    process (`make`, leading the process group the app runs in)."""
    log = tmp_path_factory.mktemp("app") / "app.log"
    port = free_port()
    env = {**kedro_env(), "MLFLOW_TRACKING_URI": store(project)}
    server = start_server(make("app", PORT=port), log, env, project)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server, 120, log, path="/health")
        yield url, log, server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def app(app_server):
    """The web app's address and log."""
    return app_server[:2]


@pytest.fixture(scope="module")
def champion(project):
    """The champion, loaded in this process (what the app must agree with), and its version."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store(project))
        model = mlflow.pyfunc.load_model(CHAMPION)
        version = mlflow.MlflowClient().get_model_version_by_alias(NAME, "champion")
    return model, version


@pytest.fixture(scope="module")
def pictures(project, app, champion, tmp_path_factory):
    """Test pictures of two classes that the champion recognises and classifies right, as PNG
    files, with their class names; and the champion's version."""
    data = pickle.loads((project / "data" / "05_model_input" / "catalogue_data.pkl").read_bytes())
    model, version = champion
    every = np.random.default_rng(0).permutation(len(data["test_labels"]))[:400]
    predicted = model.predict(data["test_images"][every])
    folder = tmp_path_factory.mktemp("pictures")
    chosen = {}
    for index, (label, answer) in enumerate(
        zip(data["test_labels"][every], predicted["class_name"], strict=True)
    ):
        name = data["class_names"][label]
        sure = predicted["confidence"][index] > 0.5 and predicted["recognised"][index]
        if answer == name and name not in chosen and sure:
            path = folder / f"{name.replace('/', ' or ')}.png"
            Image.fromarray(data["test_images"][every[index]]).save(path)
            chosen[name] = path
        if len(chosen) == 2:
            break
    assert len(chosen) == 2, "the champion classifies too few test pictures right"
    return chosen, str(version.version)


def test_predict_takes_a_multipart_upload_and_names_the_model(app, pictures, champion):
    url, _ = app
    chosen, version = pictures
    val_accuracy = float(champion[1].tags["val_accuracy"])  # as the registry holds it
    files = [("image", (path.name, path.read_bytes(), "image/png")) for path in chosen.values()]
    files.append(("image", ("notes.png", b"not a picture", "image/png")))
    bad = httpx.post(f"{url}/predict", files=files, timeout=60)
    assert bad.status_code == 400 and "notes.png: not a picture" in bad.json()["error"]
    answer = httpx.post(f"{url}/predict", files=files[:2], timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == {
        "uri": CHAMPION,
        "name": NAME,
        "version": version,
        "alias": "champion",
        "val_accuracy": pytest.approx(val_accuracy),
    }
    assert [p["class_name"] for p in body["predictions"]] == list(chosen)
    assert all(p["recognised"] for p in body["predictions"])
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
    assert f"{NAME}** version {version}" in answered
    shown = np.asarray(Image.open(seen))  # the 28x28 image, enlarged pixel by pixel
    assert shown.shape[:2] == (224, 224)
    original = np.asarray(Image.open(path))
    assert np.array_equal(shown[::8, ::8, 0] if shown.ndim == 3 else shown[::8, ::8], original)


def _source(page) -> str | None:
    return page.evaluate("() => document.querySelector('#seen img')?.src || null")


def _shown(page, url: str) -> tuple[str, np.ndarray]:
    """The `#seen` image's address and the 28x28 image it enlarges."""
    source = _source(page)
    picture = Image.open(io.BytesIO(httpx.get(urljoin(url, source), timeout=30).content))
    return source, np.asarray(picture.convert("L"))[::8, ::8]


def _wait_for_new_image(page, before: str | None) -> None:
    page.wait_for_function(
        "before => { const img = document.querySelector('#seen img');"
        " return img && img.src && img.src !== before; }",
        arg=before,
        timeout=30_000,
    )


def test_the_page_classifies_photos_and_a_sketch_and_says_what_is_not_a_picture(
    app, pictures, champion, browser, tmp_path
):
    from playwright.sync_api import expect

    url, _ = app
    chosen, version = pictures
    model, _ = champion
    example = Path(model.unwrap_python_model().examples[0])  # the gallery's first picture
    example_pixels = np.asarray(Image.open(example).convert("L"))
    example_answer = _shown_answer(model, example_pixels)
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
        top = page.locator("#classes [data-testid=label-output-value]")  # the winning class
        for name, path in chosen.items():
            upload.set_input_files(str(path))
            expect(top).to_have_text(name, timeout=30_000)
            page.get_by_role("button", name="Remove Image").first.click()
        # The model's own test pictures, one click away: the first, shown as the model sees
        # it, with the champion's answer for it.
        before = _source(page)
        page.get_by_text("Test pictures").scroll_into_view_if_needed()
        page.locator("button.gallery-item").first.click()
        _wait_for_new_image(page, before)
        source, shown = _shown(page, url)
        assert np.array_equal(shown, example_pixels)
        expect(top).to_have_text(example_answer, timeout=30_000)
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
        # The stroke, as the model sees it (light on dark), and the champion's answer for it.
        _wait_for_new_image(page, source)
        _, stroke = _shown(page, url)
        assert (stroke > 0).mean() > 0.02, stroke
        expect(top).to_have_text(_shown_answer(model, stroke), timeout=30_000)
        answered.get_by_text(f"version {version}").wait_for(timeout=30_000)
    assert hosts == {"127.0.0.1"}, hosts


def _shown_answer(model, pixels: np.ndarray) -> str:
    """What the page shows as the winner for a 28x28 image: the class, or "Not recognised"."""
    answer = model.predict(pixels[None].astype(np.float32) / 255)
    return answer["class_name"][0] if answer["recognised"][0] else NOT_RECOGNISED


def test_a_picture_of_no_garment_is_said_to_be_none_of_the_classes(app, champion, tmp_path):
    """A synthetic non-garment (outlier_sets.py) that the champion does not recognise: the
    API says so and the page says it plainly instead of a confident wrong name."""
    from gradio_client import Client, handle_file

    url, _ = app
    model, _ = champion
    from fashion_transfer.served_model.pictures import convert_picture

    pictures, _ = outlier_sets.synthetic(10, seed=5)
    # As the server sees an upload: through the served conversion (which centres the item).
    seen = np.stack([convert_picture(Image.fromarray(picture)).image for picture in pictures])
    answers = model.predict(seen.astype(np.float32) / 255)
    refused = np.flatnonzero(~answers["recognised"].to_numpy())
    assert len(refused), "the champion recognises every synthetic non-garment"
    path = tmp_path / "not-clothing.png"
    Image.fromarray(pictures[refused[0]]).save(path)
    body = httpx.post(
        f"{url}/predict", files=[("image", (path.name, path.read_bytes(), "image/png"))], timeout=60
    ).json()
    assert body["predictions"][0]["recognised"] is False
    _, classes, answered = Client(url, verbose=False).predict(
        handle_file(str(path)), api_name="/classify_photo"
    )
    assert classes["label"] == NOT_RECOGNISED
    assert "does not look like any of the classes the model knows" in answered


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


def test_hostile_pictures_get_a_400_naming_them_never_a_server_error(app):
    """The fuzzing corpus (its 49 MP bombs included), the inputs the fuzzer found and mutants
    of them, one upload each: 200, or 400 naming the file; never a 5xx, nor a traceback."""
    url, log = app
    pictures = {name.replace("/", "-"): data for name, data in seed_corpus().items()}
    pictures |= {path.name: path.read_bytes() for path in sorted(FOUND.iterdir())}
    pictures |= {f"mutant-{index}": mutant(3, index)[1] for index in range(80)}
    statuses = Counter()
    with httpx.Client(timeout=60) as client:
        for name, data in pictures.items():
            answer = client.post(f"{url}/predict", files=[("image", (name, data, "image/png"))])
            statuses[answer.status_code] += 1
            assert answer.status_code in (200, 400), (name, answer.status_code, answer.text)
            if answer.status_code == 400:
                assert answer.json()["error"].startswith(f"{name}: "), answer.text
    assert statuses[200] and statuses[400], statuses
    assert "Traceback" not in log.read_text()


def test_uploads_over_the_limits_are_refused_before_they_are_read(app):
    url, log = app
    port = int(url.rsplit(":", 1)[1])
    form = "multipart/form-data; boundary=x"
    status, body = answer_to_headers_alone(port, "/predict", MAX_REQUEST_BYTES + 1, form)
    assert status == 413, body
    assert json.loads(body)["error"] == (
        f"The request body is {(MAX_REQUEST_BYTES + 1) / 2**20:.1f} MB; uploads to this app "
        f"take at most {MAX_REQUEST_BYTES // 2**20} MB. Send less in each request."
    )
    # Gradio's own upload route, under the page's limit
    status, body = answer_to_headers_alone(port, "/gradio_api/upload", PAGE_REQUEST_BYTES + 1, form)
    assert status == 413 and f"at most {PAGE_REQUEST_BYTES // 2**20} MB" in body, body
    # Without a length: counted as it comes, refused once past the limit
    status, body = chunked_post(port, "/gradio_api/upload", _files(8, 5), form)
    assert status == 413, body
    assert "passed 32 MB before its end" in json.loads(body)["error"], body
    status, body = chunked_post(port, "/predict", _files(1, 1, field="image"), form)
    assert status == 400 and json.loads(body)["error"].startswith("0.png: not a picture"), body
    assert "Traceback" not in log.read_text()


def test_a_burst_of_large_uploads_keeps_memory_bounded_and_others_answered(app_server):
    """Six uploads of 40 MB at once to the page's upload route, without a length: each
    refused once past 32 MB, streamed (Starlette spools files to disk), memory flat; the
    health check answered meanwhile."""
    url, log, server = app_server
    port = int(url.rsplit(":", 1)[1])
    form = "multipart/form-data; boundary=x"
    result = burst(
        server.pid,
        uploads=6,
        upload=lambda: chunked_post(port, "/gradio_api/upload", _files(8, 5), form),
        other=lambda: httpx.get(f"{url}/health", timeout=30).status_code,
    )
    assert [status for status, _ in result.answers] == [413] * 6, result.answers
    assert result.other[0] == 200
    assert result.peak_mb - result.base_mb < 64, result
    assert "Traceback" not in log.read_text()


def _files(count: int, megabytes: int, field: str = "files"):
    """A multipart body of `count` files of zeros, `megabytes` each (boundary "x")."""

    def parts():
        for index in range(count):
            yield (
                f'--x\r\nContent-Disposition: form-data; name="{field}"; '
                f'filename="{index}.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            for _ in range(megabytes):
                yield bytes(2**20)
            yield b"\r\n"
        yield b"--x--\r\n"

    return parts
