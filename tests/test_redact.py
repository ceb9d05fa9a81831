"""Secrets in URLs are never shown (fashion_transfer/redact.py)."""

import pytest

from fashion_transfer.redact import holds_secret, redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://fashion:pw@db:5432/optuna", "postgresql+psycopg://fashion:***@db:5432/optuna"),
        ("postgresql://fashion@db/optuna?password=pw&sslmode=require", "postgresql://fashion@db/optuna?password=***&sslmode=require"),
        ("https://admin:s3cret@mlflow.team:5005", "https://admin:***@mlflow.team:5005"),
        ("https://mirror.example/fmnist/?token=abc", "https://mirror.example/fmnist/?token=***"),
    ],
)  # fmt: skip
def test_a_password_or_token_in_a_url_is_hidden(url, shown):
    assert redact(url) == shown and holds_secret(url)
    assert "pw" not in shown.split("//")[1] and "s3cret" not in shown


@pytest.mark.parametrize(
    "url",
    ["sqlite:///mlruns/optuna.db", "postgresql+psycopg://fashion@127.0.0.1:5433/optuna",
     "../shared/datasets/fashion-mnist", "http://127.0.0.1:5005"],
)  # fmt: skip
def test_a_url_without_a_secret_is_shown_as_given(url):
    assert redact(url) == url and not holds_secret(url)
