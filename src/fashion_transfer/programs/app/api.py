"""The web app's model and its HTTP API, beside the Gradio page (page.py):

- `POST /predict`: one or many pictures as multipart/form-data, each in a field `image`
  (`curl -F image=@shirt.jpg -F image=@boot.png URL/predict`); the answer names the model
  and gives each picture's classes, most likely first;
- `GET /health`: the model that answers.

Pictures are converted as the served model converts them (served_model/pictures.py). A
picture that cannot be read gets a 400 naming it; a file sent as another content type a 415;
too many or too large ones a 413 or 400 saying the limit. Request bodies are bounded before
they are read (`bounded`, request_limits.py): an upload to /predict over MAX_REQUEST_BYTES,
anything else (the page's own uploads) over PAGE_REQUEST_BYTES, gets a 413. The pictures of an
upload are read and converted one at a time, and at most CONVERSIONS_AT_ONCE conversions run
at once in the app (each may decode up to 50 megapixels), off the server's event loop, so
that its memory stays bounded and other requests are answered meanwhile."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import mlflow
import numpy as np
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from fashion_transfer.programs.request_limits import BoundedBodies
from fashion_transfer.served_model.contract import (
    MAX_PICTURE_BYTES,
    InvalidImagesError,
    pictures_to_images,
)

FIELD = "image"
MAX_FILES = 64  # pictures in one upload
MAX_REQUEST_BYTES = MAX_FILES * MAX_PICTURE_BYTES
# The page's requests: a photo (Gradio takes files up to 10 MB: __main__.py), a sketch's
# layers, the queue's JSON.
PAGE_REQUEST_BYTES = 32 * 2**20
CONVERSIONS_AT_ONCE = 2


@dataclass
class ServedModel:
    """A registered model as the app serves it, and what the page says about it."""

    uri: str
    pyfunc: mlflow.pyfunc.PyFuncModel
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    val_accuracy: float | None = None
    class_names: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # test pictures the model carries

    def describe(self) -> dict:
        return {
            "uri": self.uri,
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "val_accuracy": self.val_accuracy,
        }

    def classify(self, images: np.ndarray) -> list[dict]:
        """Per image: its classes by probability, most likely first, the top one's label and
        whether the picture is recognised as one of them at all."""
        table = self.pyfunc.predict(images)
        answers = []
        for _, row in table.iterrows():
            probabilities = {name: float(row[name]) for name in self.class_names}
            ranked = dict(sorted(probabilities.items(), key=lambda item: -item[1]))
            answer = {
                "label": int(row["label"]),
                "class_name": row["class_name"],
                "confidence": float(row["confidence"]),
            }
            if "recognised" in row:  # models registered before it was added have none
                answer |= {
                    "recognised": bool(row["recognised"]),
                    "ood_score": float(row["ood_score"]),
                }
            answers.append(answer | {"probabilities": ranked})
        return answers


def load_model(uri: str) -> ServedModel:
    """The model behind `uri` (`models:/NAME@ALIAS`, `models:/NAME/VERSION`, or a folder)."""
    pyfunc = mlflow.pyfunc.load_model(uri)
    output = pyfunc.metadata.get_output_schema()
    fixed = {"label", "class_name", "confidence", "recognised", "ood_score"}
    names = [column for column in output.input_names() if column not in fixed] if output else []
    served = ServedModel(uri=uri, pyfunc=pyfunc, class_names=names)
    if uri.startswith("models:/"):
        name, _, which = uri.removeprefix("models:/").partition("@")
        client = mlflow.MlflowClient()
        if which:  # models:/NAME@ALIAS
            version = client.get_model_version_by_alias(name, which)
            served.alias = which
        else:  # models:/NAME/VERSION
            name, _, number = name.partition("/")
            version = client.get_model_version(name, number)
        served.name, served.version = name, str(version.version)
        if "val_accuracy" in version.tags:
            served.val_accuracy = float(version.tags["val_accuracy"])
    # Models registered before examples were logged with them have none.
    served.examples = list(getattr(pyfunc.unwrap_python_model(), "examples", []))
    return served


def create_api(model: ServedModel, cors_origins: list[str] | None = None) -> FastAPI:
    app = FastAPI(title="Fashion-MNIST classifier", docs_url="/api/docs", redoc_url=None)
    if cors_origins:  # browser pages on those origins may call /predict
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": model.describe()}

    @app.post("/predict")
    async def predict(request: Request):
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return _problem(
                415,
                f"Send the pictures as multipart/form-data, each in a field {FIELD!r} "
                f"(curl -F {FIELD}=@shirt.jpg ...), not as {content_type or 'no content type'}.",
            )
        form = await request.form(max_files=MAX_FILES + 1, max_fields=MAX_FILES + 1)
        uploads = [item for item in form.getlist(FIELD) if hasattr(item, "read")]
        if not uploads:
            return _problem(400, f"No picture: send one or more files in a field {FIELD!r}.")
        if len(uploads) > MAX_FILES:
            return _problem(400, f"More than {MAX_FILES} pictures; send at most {MAX_FILES}.")
        names = [upload.filename or f"picture {i}" for i, upload in enumerate(uploads)]
        for name, upload in zip(names, uploads, strict=True):
            kind = (upload.content_type or "").split(";")[0]
            if kind and not kind.startswith("image/") and kind != "application/octet-stream":
                return _problem(415, f"{name} is {kind}, not a picture.")
            if (upload.size or 0) > MAX_PICTURE_BYTES:
                return _problem(413, f"{name} is over the {MAX_PICTURE_BYTES // 2**20} MB taken.")
        images = []
        for name, upload in zip(names, uploads, strict=True):
            data = await upload.read(MAX_PICTURE_BYTES + 1)
            if len(data) > MAX_PICTURE_BYTES:  # (a part that gave no size)
                return _problem(413, f"{name} is over the {MAX_PICTURE_BYTES // 2**20} MB taken.")
            try:  # one picture at a time in memory, decoded off the event loop
                images.append(await anyio.to_thread.run_sync(
                    pictures_to_images, [data], [name], limiter=_conversions()
                ))  # fmt: skip
            except InvalidImagesError as error:
                return _problem(400, str(error))
        answers = await anyio.to_thread.run_sync(
            model.classify, np.concatenate(images), limiter=_conversions()
        )
        return {
            "model": model.describe(),
            "predictions": [
                {"file": name, **answer} for name, answer in zip(names, answers, strict=True)
            ],
        }

    return app


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


_limiter: anyio.CapacityLimiter | None = None


def _conversions() -> anyio.CapacityLimiter:
    """The app's one bound on conversions at once (made in the server's event loop)."""
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(CONVERSIONS_AT_ONCE)
    return _limiter


def body_limit(path: str) -> int:
    return MAX_REQUEST_BYTES if path.rstrip("/") == "/predict" else PAGE_REQUEST_BYTES


def bounded(app) -> BoundedBodies:
    """The whole app (the API and the page mounted beside it) with its request bodies bounded
    before they are read."""
    return BoundedBodies(
        app, body_limit, error=lambda message: {"error": message}, what="uploads to this app"
    )
