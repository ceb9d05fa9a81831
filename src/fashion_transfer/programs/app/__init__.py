"""`make app`: one web app on a registered model. `api.py` loads the model and answers
`POST /predict` (pictures as a multipart upload, the form web pages and phone apps send) and
`/health`; `page.py` is the Gradio page mounted beside them, where a person uploads, drops,
pastes, photographs or draws a picture; `__main__.py` starts it on 127.0.0.1."""
