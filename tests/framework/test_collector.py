"""`kedro run` in this project pauses the garbage collector while it starts and gives it back,
with the start-up's objects frozen, once the pipeline is about to run; nothing else is paused."""

import pytest

from fashion_transfer.framework import collector


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """The collector's switches, recorded instead of made (the test process keeps its own)."""
    made: list[str] = []
    monkeypatch.setattr(collector, "_paused", False)
    monkeypatch.setattr(collector.gc, "isenabled", lambda: "disable" not in made)
    for name in ("disable", "enable", "freeze"):
        monkeypatch.setattr(collector.gc, name, lambda name=name: made.append(name))
    return made


def _project(folder, package="fashion_transfer"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(f'[tool.kedro]\npackage_name = "{package}"\n')
    return folder


def test_a_run_here_pauses_until_the_pipeline_starts_then_freezes(calls, monkeypatch, tmp_path):
    _project(tmp_path)
    nested = tmp_path / "notebooks"
    nested.mkdir()
    monkeypatch.chdir(nested)  # Kedro finds the project from a folder inside it too
    monkeypatch.setattr(collector.sys, "argv", ["kedro", "run", "--params", "x=1"])
    collector.pause_for_run()
    assert calls == ["disable"]
    collector.resume()
    assert calls == ["disable", "freeze", "enable"]
    collector.resume()  # once
    assert calls == ["disable", "freeze", "enable"]


@pytest.mark.parametrize(
    ("argv", "package"),
    [
        (["kedro", "viz", "run"], "fashion_transfer"),  # another command
        (["kedro"], "fashion_transfer"),
        (["kedro", "run"], "other_project"),
    ],
)
def test_other_commands_and_projects_keep_the_collector(
    calls, monkeypatch, tmp_path, argv, package
):
    monkeypatch.chdir(_project(tmp_path, package))
    monkeypatch.setattr(collector.sys, "argv", argv)
    collector.pause_for_run()
    collector.resume()  # a session of another command does not freeze anything
    assert calls == []


def test_outside_any_project_nothing_is_paused(calls, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(collector.sys, "argv", ["kedro", "run"])
    collector.pause_for_run()
    assert calls == []
