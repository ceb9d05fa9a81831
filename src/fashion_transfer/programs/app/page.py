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
from fashion_transfer.served_model.pictures import (
    Conversion,
    PictureError,
    convert_picture,
    open_picture,
)

SHOWN_SIZE = 224  # the 28x28 image, enlarged without smoothing so that its pixels show
NOT_RECOGNISED = "Not recognised"
NOT_RECOGNISED_LINE = (
    "**This picture does not look like any of the classes the model knows**, so it gives no "
    "class. Send a photo of one garment, shoe or bag of the catalogue."
)


def build_page(model: ServedModel) -> gr.Blocks:
    with gr.Blocks(title="Fashion-MNIST classifier", analytics_enabled=False) as page:
        gr.Markdown(
            "# Fashion-MNIST classifier\n"
            f"Classes: {', '.join(model.class_names)}. Photograph one item on a plain "
            "surface: the page finds it, crops it and converts it as Fashion-MNIST's pictures "
            "were made (greyscale, the item light on black, 28x28 pixels), and shows what "
            "the model sees."
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
                conversion = convert_picture(open_picture(data))
            except (PictureError, OSError) as error:
                return None, None, f"**This file is not a picture the model can read:** {error}."
            return _answer(model, conversion)

        def classify_sketch(drawing: dict | None):
            composite = (drawing or {}).get("composite")
            if composite is None or not np.asarray(composite)[..., -1].any():
                return None, None, _model_line(model)  # nothing drawn yet
            buffer = io.BytesIO()
            Image.fromarray(np.asarray(composite, np.uint8)).save(buffer, "PNG")
            return _answer(model, convert_picture(open_picture(buffer.getvalue())))

        outputs = [seen, classes, answered]
        photo.change(classify_photo, photo, outputs, api_name="classify_photo", preprocess=False)
        sketch.change(classify_sketch, sketch, outputs, api_name="classify_sketch")
    return page


def _answer(model: ServedModel, conversion: Conversion):
    (answer,) = model.classify(unit_scale(conversion.image[None]))
    shown = Image.fromarray(conversion.image).resize(
        (SHOWN_SIZE, SHOWN_SIZE), Image.Resampling.NEAREST
    )
    line = _model_line(model)
    if conversion.note:  # say why the answer may be about the background, not an item
        line = f"**Note:** {conversion.note[0].upper()}{conversion.note[1:]}.\n\n{line}"
    if answer.get("recognised") is False:  # not a confident wrong name
        return shown, {NOT_RECOGNISED: 1.0}, f"{NOT_RECOGNISED_LINE}\n\n{line}"
    return shown, answer["probabilities"], line


def _model_line(model: ServedModel) -> str:
    if model.name is None:
        return f"Answered by the model at `{model.uri}`."
    which = f"alias `{model.alias}`, " if model.alias else ""
    accuracy = (
        f", validation accuracy {model.val_accuracy:.2%}" if model.val_accuracy is not None else ""
    )
    return f"Answered by **{model.name}** version {model.version} ({which}{model.uri}){accuracy}."
