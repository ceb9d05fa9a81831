"""The code of the logged image classifier (MLflow's "models from code"): MLflow keeps this
file with each logged model and runs it when the model is loaded, instead of unpickling a
Python object."""

import mlflow

from fashion_transfer.registry import FashionClassifier

mlflow.models.set_model(FashionClassifier())
