"""The project: an image collection and its state, one SQLite database (WAL) plus array files,
in ``ROOT/.explorer/`` by default.

Everything a person did is here; the GUI and the CLI both read and write through ``Project``.
Its parts live beside it: ``database`` (connections, transactions), ``items`` (scanned files),
``classes``, ``labels`` (undoable label events, pseudo-labels) and ``runs`` (runs and their arrays).
"""

from __future__ import annotations

from pathlib import Path

from explorer.store.classes import PALETTE, Classes, ClassUsage, LabelClass
from explorer.store.database import BUSY_TIMEOUT_S, ProjectError, StateNotWritable
from explorer.store.items import FileTable, Item, Items, ScannedFile
from explorer.store.labels import HUMAN_SOURCES, LabelTable
from explorer.store.runs import Run, Runs

__all__ = [
    "BUSY_TIMEOUT_S",
    "HUMAN_SOURCES",
    "PALETTE",
    "ClassUsage",
    "FileTable",
    "Item",
    "LabelClass",
    "LabelTable",
    "Project",
    "ProjectError",
    "Run",
    "ScannedFile",
    "StateNotWritable",
]


class Project(Items, Classes, Runs):
    """An image collection at ``root`` with its state in ``state_dir``."""

    def __init__(self, root: str | Path, state_dir: str | Path | None = None, create: bool = True):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ProjectError(f"image folder not found: {self.root}")
        self.state_dir = Path(state_dir).expanduser().resolve() if state_dir else self.root / ".explorer"
        db_path = self.state_dir / "project.sqlite"
        if not create and not db_path.exists():
            raise ProjectError(f"no project in {self.state_dir}: run `explorer scan {self.root}` first")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "arrays").mkdir(exist_ok=True)
        except OSError as exc:  # a read-only folder (a DVD, a shared drive, someone else's files)
            where = "--state DIR (the window asks for one)" if not state_dir else "another --state DIR"
            raise StateNotWritable(
                f"cannot keep this project's state in {self.state_dir} ({exc.strerror or exc}): the images stay "
                f"where they are; choose a folder you can write to with {where}"
            ) from None
        super().__init__(db_path)
