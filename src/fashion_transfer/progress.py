"""Progress a person can follow: in a terminal, a live bar under the log (epoch, batch, time
left, last validation accuracy; bytes of a download); elsewhere (CI, a log file) nothing but
the plain log lines, which say the same at the end of each epoch or download."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import rich
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def _live() -> bool:
    # The console Kedro's log handler writes to, so that the bar stays under the log lines.
    return rich.get_console().is_terminal


class EpochBar:
    """One training phase: advance() after each batch, epoch_done() after each epoch."""

    def __init__(self, progress: Progress | None, task, batches_per_epoch: int):
        self._progress, self._task, self._batches = progress, task, batches_per_epoch

    def advance(self) -> None:
        if self._progress:
            self._progress.advance(self._task)

    def epoch_done(self, epoch: int, epochs: int, val_accuracy: float) -> None:
        if self._progress:
            self._progress.update(
                self._task,
                completed=epoch * self._batches,
                status=f"epoch {epoch}/{epochs}, val acc {val_accuracy:.4f}",
            )


@contextlib.contextmanager
def training_bar(name: str, epochs: int, batches_per_epoch: int) -> Iterator[EpochBar]:
    if not _live():
        yield EpochBar(None, None, batches_per_epoch)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("batches"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=rich.get_console(),
        transient=True,
    )
    with progress:
        task = progress.add_task(name, total=epochs * batches_per_epoch, status=f"epoch 1/{epochs}")
        yield EpochBar(progress, task, batches_per_epoch)


@contextlib.contextmanager
def download_bar(name: str, total_bytes: int | None) -> Iterator:
    """`advance(n)` after each chunk of n bytes received."""
    if not _live():
        yield lambda received: None
        return
    progress = Progress(
        TextColumn(name),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=rich.get_console(),
        transient=True,
    )
    with progress:
        task = progress.add_task(name, total=total_bytes)
        yield lambda received: progress.advance(task, received)
