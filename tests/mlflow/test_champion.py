"""The champion rule against a throw-away SQLite tracking store."""

import re
from concurrent.futures import ThreadPoolExecutor

import mlflow

from fashion_transfer.mlflow.champion import promote_if_best


def test_champion_moves_only_to_a_better_version(store):
    name = "fashion-test"
    store.create_registered_model(name)
    for _ in range(3):
        store.create_model_version(name, source="file:///nowhere")
    scores = lambda val, test: {"val_accuracy": val, "test_accuracy": test}  # noqa: E731
    assert promote_if_best(store, name, "1", scores(0.90, 0.90), "champion") == (
        True,
        f"first champion of {name}",
    )
    # Chosen on validation: a better test figure alone does not move the champion.
    promoted, reason = promote_if_best(store, name, "2", scores(0.85, 0.99), "champion")
    assert not promoted and "does not beat champion version 1 (0.9000)" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "1"
    promoted, reason = promote_if_best(store, name, "3", scores(0.95, 0.80), "champion")
    assert promoted and "validation accuracy 0.9500 beats champion version 1" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "3"
    tags = store.get_model_version(name, "2").tags
    assert (tags["val_accuracy"], tags["test_accuracy"]) == ("0.850000", "0.990000")


def _versions(client, name: str, accuracies: list[float]) -> None:
    client.create_registered_model(name)
    for accuracy in accuracies:
        version = client.create_model_version(name, source="file:///nowhere").version
        client.set_model_version_tag(name, version, "val_accuracy", f"{accuracy:.6f}")


def test_the_alias_ends_on_the_best_version_even_from_a_stale_holder(store):
    name = "fashion-stale"
    _versions(store, name, [0.90, 0.95])
    store.set_registered_model_alias(name, "champion", "1")  # moved by hand, or by a stale run
    store.create_model_version(name, source="file:///nowhere")
    promoted, reason = promote_if_best(
        store, name, "3", {"val_accuracy": 0.92, "test_accuracy": 0.9}, "champion"
    )
    assert not promoted and "does not beat champion version 2 (0.9500)" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "2"


def test_concurrent_registrations_leave_the_alias_on_the_best(store):
    """Eight runs register and promote at once, each with its own client, as runs on
    separate machines do against one server: no lock, and the alias still ends on the best."""
    name = "fashion-race"
    store.create_registered_model(name)
    accuracies = [0.91, 0.97, 0.93, 0.99, 0.92, 0.98, 0.94, 0.95]
    versions = [
        str(store.create_model_version(name, source="file:///nowhere").version) for _ in accuracies
    ]

    def register(version: str, accuracy: float):
        client = mlflow.MlflowClient()
        return promote_if_best(
            client, name, version, {"val_accuracy": accuracy, "test_accuracy": 0.5}, "champion"
        )

    with ThreadPoolExecutor(len(versions)) as pool:
        results = list(pool.map(register, versions, accuracies))
    winner = versions[accuracies.index(0.99)]
    assert str(store.get_model_version_by_alias(name, "champion").version) == winner
    # A run that was the best of those tagged when it last read holds the alias when it
    # returns, and may lose it to a better run that tags later; the winner always holds it,
    # and every run that does not names a better holder.
    assert results[versions.index(winner)][0]
    for (promoted, reason), accuracy in zip(results, accuracies, strict=True):
        if not promoted:
            match = re.search(r"does not beat champion version \d+ \((\d\.\d+)\)", reason)
            assert match and float(match[1]) > accuracy, reason
