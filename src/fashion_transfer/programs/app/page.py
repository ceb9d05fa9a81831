"""The web page: a person uploads, drops, pastes or photographs a picture, or draws on a
sketchpad, and sees the 28x28 image the model sees, the most likely classes with their
probabilities, and which model answered. Test pictures the model carries are one click away."""

from __future__ import annotations

import io
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from fashion_transfer.programs.app.api import ServedModel
from fashion_transfer.served_model.contract import picture_bytes, unit_scale
from fashion_transfer.served_model.pictures import PictureError, open_picture, to_model_image

SHOWN_SIZE = 224  # the 28x28 image, enlarged without smoothing so that its pixels show


def build_page(model: ServedModel) -> gr.Blocks:
    with gr.Blocks(title="Fashion-MNIST classifier", analytics_enabled=False) as page:
        gr.Markdown(
            "# Fashion-MNIST classifier\n"
            f"Classes: {', '.join(model.class_names)}. A picture of one item, ideally on a "
            "plain background, is converted as the model was trained: greyscale, the item "
            "light on a dark background, 28x28 pixels."
        )
        with gr.Row():
            with gr.Column():
                with gr.Tab("Photo"):
                    photo = gr.Image(
                        label="Upload, drop, paste or take a photo",
                        sources=["upload", "clipboard", "webcam"],
                        type="filepath",
                        height=300,
                    )
                with gr.Tab("Draw"):
                    sketch = gr.Sketchpad(
                        label="Draw an item",
                        type="numpy",
                        image_mode="RGBA",
                        canvas_size=(280, 280),
                        brush=gr.Brush(colors=["#000000"], default_size=14, color_mode="fixed"),
                    )
            with gr.Column():
                seen = gr.Image(
                    label="What the model sees (28x28)",
                    interactive=False,
                    buttons=["download"],  # no "share": that goes to Hugging Face
                    format="png",  # lossless: the very pixels the model sees
                    height=260,
                    elem_id="seen",
                )
                classes = gr.Label(
                    label="Most likely classes", num_top_classes=3, elem_id="classes"
                )
                answered = gr.Markdown(_model_line(model), elem_id="answered")
        if model.examples:
            gr.Examples(examples=model.examples, inputs=photo, label="Test pictures")

        # The upload as Gradio received it (preprocess=False below): Gradio's own
        # preprocessing fails on a file Pillow cannot open with a bare "Error", where the page
        # should say what is wrong with the file. Gradio has checked the path is an upload.
        def classify_photo(upload: dict | None):
            if not upload:
                return None, None, _model_line(model)
            try:
                if upload.get("path"):
                    data = Path(upload["path"]).read_bytes()
                else:  # a picture pasted or taken as a data: URL
                    data = picture_bytes(upload.get("url") or "")
                image = to_model_image(open_picture(data))
            except (PictureError, OSError) as error:
                return None, None, f"**This file is not a picture the model can read:** {error}."
            return _answer(model, image)

        def classify_sketch(drawing: dict | None):
            composite = (drawing or {}).get("composite")
            if composite is None or not np.asarray(composite)[..., -1].any():
                return None, None, _model_line(model)  # nothing drawn yet
            buffer = io.BytesIO()
            Image.fromarray(np.asarray(composite, np.uint8)).save(buffer, "PNG")
            return _answer(model, to_model_image(open_picture(buffer.getvalue())))

        outputs = [seen, classes, answered]
        photo.change(classify_photo, photo, outputs, api_name="classify_photo", preprocess=False)
        sketch.change(classify_sketch, sketch, outputs, api_name="classify_sketch")
    return page


def _answer(model: ServedModel, image: np.ndarray):
    (answer,) = model.classify(unit_scale(image[None]))
    shown = Image.fromarray(image).resize((SHOWN_SIZE, SHOWN_SIZE), Image.Resampling.NEAREST)
    return shown, answer["probabilities"], _model_line(model)


def _model_line(model: ServedModel) -> str:
    if model.name is None:
        return f"Answered by the model at `{model.uri}`."
    which = f"alias `{model.alias}`, " if model.alias else ""
    accuracy = (
        f", validation accuracy {model.val_accuracy:.2%}" if model.val_accuracy is not None else ""
    )
    return f"Answered by **{model.name}** version {model.version} ({which}{model.uri}){accuracy}."
