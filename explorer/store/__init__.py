"""The project store: SQLite for items, classes, labels, undo history and runs; arrays per run."""

from explorer.store.project import (
    HUMAN_SOURCES,
    FileTable,
    Item,
    LabelClass,
    LabelTable,
    Project,
    ProjectError,
    Run,
    ScannedFile,
    StateNotWritable,
)

__all__ = [
    "HUMAN_SOURCES",
    "FileTable",
    "Item",
    "LabelClass",
    "LabelTable",
    "Project",
    "ProjectError",
    "StateNotWritable",
    "Run",
    "ScannedFile",
]
