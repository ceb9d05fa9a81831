"""The served model: the code every registered version runs when it is loaded, by `make serve`,
`make app`, `predict` or any MLflow deployment.

- `pictures.py`: any picture a browser or a phone sends, as the 28x28 image the model sees;
- `contract.py`: what a request may hold (arrays of pixels or encoded pictures) and the table
  it gets back;
- `classifier.py`: the MLflow pyfunc around the version's ONNX graph (ONNX Runtime);
- `model_code.py`: the file MLflow runs to build it ("models from code").

It imports numpy, pandas, Pillow, OpenCV, onnxruntime and mlflow only, never PyTorch or the rest of
the project: each logged model carries this folder and nothing else of the package, so it
runs wherever its own requirements.txt is installed."""
