"""The file MLflow runs to build a logged model ("models from code"). The model carries the
served_model folder, which MLflow puts on the import path under that name when it loads the
model; when the project logs one, MLflow runs this file from the installed package."""

import mlflow

try:
    from served_model.classifier import FashionClassifier
except ImportError:  # logging, in the project
    from fashion_transfer.served_model.classifier import FashionClassifier

mlflow.models.set_model(FashionClassifier())
