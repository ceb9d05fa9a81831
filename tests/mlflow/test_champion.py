"""The champion rule against a throw-away SQLite tracking store."""

import re
from concurrent.futures import ThreadPoolExecutor

import mlflow

from fashion_transfer.mlflow.champion import promote_if_best

FIVE_TO_NINE = {"classes": "5,6,7,8,9", "validation_split": "0.1 of all training examples"}
FIVE_AND_EIGHT = {"classes": "5,8", "validation_split": "0.1 of all training examples"}
A_SLICE = {"classes": "5,6,7,8,9", "validation_split": "0.1 of 1500 training examples"}


def scores(val: float, test: float = 0.5) -> dict:
    return {"val_accuracy": val, "test_accuracy": test}


def _new_version(client, name: str) -> str:
    return str(client.create_model_version(name, source="file:///nowhere").version)


def test_champion_moves_only_to_a_better_version(store):
    name = "fashion-test"
    store.create_registered_model(name)
    for _ in range(3):
        _new_version(store, name)
    assert promote_if_best(store, name, "1", scores(0.90, 0.90), "champion", FIVE_TO_NINE) == (
        True,
        f"first champion of {name}",
        "1",
    )
    # Chosen on validation: a better test figure alone does not move the champion.
    promoted, reason, holder = promote_if_best(
        store, name, "2", scores(0.85, 0.99), "champion", FIVE_TO_NINE
    )
    assert not promoted and holder == "1"
    assert "does not beat champion version 1 (0.9000)" in reason
    promoted, reason, holder = promote_if_best(
        store, name, "3", scores(0.95, 0.80), "champion", FIVE_TO_NINE
    )
    assert promoted and holder == "3" and "0.9500 beats champion version 1" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "3"
    tags = store.get_model_version(name, "2").tags
    assert (tags["val_accuracy"], tags["test_accuracy"]) == ("0.850000", "0.990000")
    assert (tags["classes"], tags["validation_split"]) == tuple(FIVE_TO_NINE.values())


def test_a_version_that_answers_another_question_never_takes_the_alias(store):
    name = "fashion-questions"
    store.create_registered_model(name)
    first = _new_version(store, name)
    promote_if_best(store, name, first, scores(0.90), "champion", FIVE_TO_NINE)
    # Two classes are easier than five, and a small slice scores on another validation
    # split: their higher figures do not compare, and an ankle boot must stay an ankle boot.
    for question in (FIVE_AND_EIGHT, A_SLICE):
        version = _new_version(store, name)
        promoted, reason, holder = promote_if_best(
            store, name, version, scores(0.99), "champion", question
        )
        assert not promoted and holder == first
        assert "answers another question than champion version 1" in reason
        assert "registry.model_names" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == first
    # A better version that answers the same question still takes it.
    better = _new_version(store, name)
    promoted, _, holder = promote_if_best(
        store, name, better, scores(0.95), "champion", FIVE_TO_NINE
    )
    assert promoted and holder == better


def test_a_champion_from_before_versions_were_tagged_is_only_replaced_by_a_better_one(store):
    name = "fashion-old"
    store.create_registered_model(name)
    old = _new_version(store, name)
    store.set_model_version_tag(name, old, "val_accuracy", "0.930000")  # as tagged before
    store.set_registered_model_alias(name, "champion", old)
    worse, better = _new_version(store, name), _new_version(store, name)
    assert promote_if_best(store, name, worse, scores(0.92), "champion", FIVE_TO_NINE)[2] == old
    assert promote_if_best(store, name, better, scores(0.94), "champion", FIVE_TO_NINE)[2] == better


def _versions(client, name: str, accuracies: list[float]) -> None:
    client.create_registered_model(name)
    for accuracy in accuracies:
        version = _new_version(client, name)
        client.set_model_version_tag(name, version, "val_accuracy", f"{accuracy:.6f}")
        for key, value in FIVE_TO_NINE.items():
            client.set_model_version_tag(name, version, key, value)


def test_the_alias_ends_on_the_best_version_even_from_a_stale_holder(store):
    name = "fashion-stale"
    _versions(store, name, [0.90, 0.95])
    store.set_registered_model_alias(name, "champion", "1")  # moved by hand, or by a stale run
    _new_version(store, name)
    promoted, reason, holder = promote_if_best(
        store, name, "3", scores(0.92, 0.9), "champion", FIVE_TO_NINE
    )
    assert not promoted and holder == "2" and "does not beat champion version 2 (0.9500)" in reason
    assert str(store.get_model_version_by_alias(name, "champion").version) == "2"


def test_concurrent_registrations_leave_the_alias_on_the_best(store):
    """Eight runs register and promote at once, each with its own client, as runs on
    separate machines do against one server: no lock, and the alias still ends on the best."""
    name = "fashion-race"
    store.create_registered_model(name)
    accuracies = [0.91, 0.97, 0.93, 0.99, 0.92, 0.98, 0.94, 0.95]
    versions = [_new_version(store, name) for _ in accuracies]

    def register(version: str, accuracy: float):
        client = mlflow.MlflowClient()
        return promote_if_best(client, name, version, scores(accuracy), "champion", FIVE_TO_NINE)

    with ThreadPoolExecutor(len(versions)) as pool:
        results = list(pool.map(register, versions, accuracies))
    winner = versions[accuracies.index(0.99)]
    assert str(store.get_model_version_by_alias(name, "champion").version) == winner
    # A run that was the best of those tagged when it last read held the alias in that read,
    # and may lose it to a better run that tags later; the winner always holds it, and every
    # run that does not names a better holder.
    assert results[versions.index(winner)][0]
    for (promoted, reason, _), accuracy in zip(results, accuracies, strict=True):
        if not promoted:
            match = re.search(r"does not beat champion version \d+ \((\d\.\d+)\)", reason)
            assert match and float(match[1]) > accuracy, reason


class _StaleMoveAfter:
    """A client on which another, slower run moves the alias to `stale` just before the
    `reads`-th read of the alias: that run read the versions before the best was tagged."""

    def __init__(self, client, name: str, stale: str, reads: int):
        self._client, self._name, self._stale, self._left = client, name, stale, reads

    def get_model_version_by_alias(self, name, alias):
        self._left -= 1
        if self._left == 0:
            self._client.set_registered_model_alias(self._name, alias, self._stale)
        return self._client.get_model_version_by_alias(name, alias)

    def __getattr__(self, attribute):
        return getattr(self._client, attribute)


def test_a_stale_move_after_the_best_agreed_is_not_reported_as_its_defeat(store):
    """The CI run that found it: the best of eight concurrent runs moved the alias, read it
    back on itself and stopped, then a slower run's stale move landed before a last read, and
    the best run reported "does not beat" though the slower run moved the alias back."""
    name = "fashion-stale-move"
    _versions(store, name, [0.90])
    promote_if_best(store, name, "1", scores(0.90), "champion", FIVE_TO_NINE)
    best = _new_version(store, name)
    # Reads: before, the round that moves the alias, the round that agrees; the slower run
    # moves it before any read after those.
    racing = _StaleMoveAfter(store, name, stale="1", reads=4)
    promoted, reason, holder = promote_if_best(
        racing, name, best, scores(0.99), "champion", FIVE_TO_NINE
    )
    assert promoted and holder == best, reason
    assert "0.9900 beats champion version 1" in reason
    # The slower run reads again, finds the better version and moves the alias back.
    promoted, reason, holder = promote_if_best(
        store, name, "1", scores(0.90), "champion", FIVE_TO_NINE
    )
    assert not promoted and holder == best and "does not beat champion version 2" in reason


def test_a_run_left_running_by_a_dead_process_is_ended_as_killed(store):
    from fashion_transfer.mlflow.store import (
        HOST_TAG,
        PROCESS_TAG,
        end_abandoned_runs,
        this_process,
    )

    host = __import__("os").uname().nodename
    experiment = store.get_experiment_by_name("registry-test").experiment_id
    dead = store.create_run(experiment, tags={HOST_TAG: host, PROCESS_TAG: "999999:1"})
    alive = store.create_run(experiment, tags={HOST_TAG: host, PROCESS_TAG: this_process()})
    elsewhere = store.create_run(experiment, tags={HOST_TAG: "another", PROCESS_TAG: "999999:1"})
    current = store.create_run(experiment, tags={HOST_TAG: host, PROCESS_TAG: "999998:1"})
    ended = end_abandoned_runs(store, experiment, current.info.run_id)
    assert ended == [dead.info.run_id]
    assert store.get_run(dead.info.run_id).info.status == "KILLED"
    assert "without closing the run" in store.get_run(dead.info.run_id).data.tags["killed_reason"]
    for run in (alive, elsewhere, current):
        assert store.get_run(run.info.run_id).info.status == "RUNNING"
