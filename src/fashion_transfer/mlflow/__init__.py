"""MLflow glue: the tracking store (store.py), the logged model (logged_model.py) and its model
card (model_card.py), registration (registration.py) and the champion rule (champion.py), the
metric histories as kedro-mlflow logs them (metrics.py), kedro-mlflow's hook with batched
parameters (parameters.py), and the class of models registered before the served model ran on
ONNX (legacy.py)."""
