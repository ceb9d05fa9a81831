"""`make app`: the web app (a Gradio page mounted in a FastAPI app beside `/predict` and
`/health`) on a registered model, with the same store as `make serve`.

    python -m fashion_transfer.programs.app [--model NAME | --model-uri URI] [--port 7860]
        [--host 127.0.0.1] [--cors-origin https://app.example.org ...]

The model is the champion of the catalogue model, or of NAME. Browser pages on other origins
may call /predict only from the origins given with --cors-origin (or, comma-separated, in
FASHION_TRANSFER_CORS_ORIGINS); none by default. Nothing leaves the machine: Gradio's version
check and analytics are off, and there is no share link."""

from __future__ import annotations

import argparse
import os
import sys

MAX_UPLOAD = "10mb"  # one file on the page (Gradio has no limit of its own)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a registered model's name; its champion answers")
    parser.add_argument("--model-uri", help="a model URI such as models:/NAME/3")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--cors-origin", action="append", default=[], dest="cors_origins")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from fashion_transfer.errors import ProjectError, TrackingStoreError
    from fashion_transfer.programs.processes import model_to_serve

    try:
        model_uri = model_to_serve(args.model_uri, args.model)
    except (ProjectError, TrackingStoreError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    origins = args.cors_origins + [
        origin.strip()
        for origin in os.environ.get("FASHION_TRANSFER_CORS_ORIGINS", "").split(",")
        if origin.strip()
    ]
    import gradio as gr
    import uvicorn

    from fashion_transfer.programs.app.api import bounded, create_api, load_model
    from fashion_transfer.programs.app.page import build_page

    model = load_model(model_uri)
    api = create_api(model, origins)
    app = gr.mount_gradio_app(api, build_page(model), path="/", max_file_size=MAX_UPLOAD)
    print(
        f"The web app on {model.uri} at http://{args.host}:{args.port}/ "
        f"(POST /predict, GET /health{'; CORS for ' + ', '.join(origins) if origins else ''}). "
        "Ctrl-C stops it.",
        flush=True,
    )
    uvicorn.run(bounded(app), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
