"""Where the project is, wherever Python runs from (its root, or notebooks/ below it)."""

from pathlib import Path

from kedro.utils import find_kedro_project


def project_root() -> Path:
    """The Kedro project holding the current folder: its root when kedro runs there, or above
    it when a notebook in notebooks/ loads the project."""
    return find_kedro_project(Path.cwd()) or Path.cwd()


def in_project(sqlite_url: str) -> str:
    """A SQLite URL with a relative path (sqlite:///mlruns/x.db) made absolute in the project;
    other URLs as they are."""
    prefix = "sqlite:///"
    if not sqlite_url.startswith(prefix) or sqlite_url.startswith(prefix + "/"):
        return sqlite_url
    return f"{prefix}{project_root() / sqlite_url.removeprefix(prefix)}"
