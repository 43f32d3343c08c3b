"""The project store: SQLite for items, classes, labels, undo history and runs; arrays per run.

Its public names are ``explorer.store.project``'s (one list, kept there)."""

from explorer.store import project as _project
from explorer.store.project import *  # noqa: F403

__all__ = list(_project.__all__)
