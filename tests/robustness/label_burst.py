"""A stand-in for the window's label actions, run as a child process by the robustness tests.

    python tests/robustness/label_burst.py ROOT --seed S --actions N [--no-undo] [--no-digest] [--go FILE]
        [--pause SECONDS]

Opens the project at ROOT, prints ``ready``, then performs N label actions through the store as
the window does (label a selection, clear, accept, reject, undo, redo, replace the pseudo-labels
after a propagation, add a class), chosen by a seeded generator. After each action has returned
(so it is committed) it prints ``ack K EVENT DIGEST``, flushed: K counts actions from 1, EVENT is
the event id or -1, DIGEST is ``state_digest`` of the committed store (``-`` with --no-digest).
With ``--go FILE`` it waits after ``ready`` until FILE exists, so several start at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

from explorer.store import Project, ScannedFile

N_ITEMS = 300
N_CLASSES = 5


def make_project(root: Path, seed: int = 0) -> None:
    """A project with N_ITEMS items (records only, no image files), classes, pseudo-labels and a
    few seed labels, every label made through an event (so replaying events rebuilds them)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with Project(root) as project:
        project.record_scan([ScannedFile(f"img/{k:04d}.png", 100, 1, 8, 8, "RGB") for k in range(N_ITEMS)], gone=[])
        classes = [project.add_class(f"class {k}").id for k in range(N_CLASSES)]
        ids = project.item_ids()
        project.save_pseudo_labels(ids, rng.choice(classes, len(ids)), rng.uniform(0.2, 1.0, len(ids)))
        for c in classes:
            project.set_labels(rng.choice(ids, 3, replace=False), c)


def state_rows(db: sqlite3.Connection) -> dict:
    """Everything a label action can change, without timestamps (which differ run to run)."""
    q = lambda sql: [list(r) for r in db.execute(sql).fetchall()]  # noqa: E731
    return {
        "classes": q("SELECT id, name FROM classes ORDER BY id"),
        "labels": q("SELECT item_id, class_id, source FROM labels ORDER BY item_id"),
        "rejections": q("SELECT item_id, class_id FROM rejections ORDER BY item_id, class_id"),
        "pseudo": q("SELECT item_id, class_id, round(confidence, 6) FROM pseudo_labels ORDER BY item_id"),
        "events": q("SELECT id, action, undone FROM events ORDER BY id"),
        "changes": q(
            "SELECT event_id, item_id, kind, old_class, old_source, new_class, new_source FROM event_changes "
            "ORDER BY event_id, rowid"
        ),
    }


def state_digest(db: sqlite3.Connection) -> str:
    return hashlib.sha1(json.dumps(state_rows(db)).encode()).hexdigest()[:16]


def act(project: Project, rng: np.random.Generator, undo: bool) -> int | None:
    """One user action picked by ``rng``; the event id it made, or None."""
    ids = project.item_ids()
    classes = [c.id for c in project.classes()]
    pick = lambda most: rng.choice(ids, int(rng.integers(1, most + 1)), replace=False)  # noqa: E731
    roll = rng.uniform()
    if roll < 0.30:
        return project.set_labels_many({int(i): (int(rng.choice(classes)), "seed") for i in pick(20)}, "label")
    if roll < 0.40:
        return project.set_labels(pick(5), None)
    if roll < 0.55:
        return project.accept_pseudo(pick(20))
    if roll < 0.70:
        return project.reject_pseudo(pick(10))
    if roll < 0.85:
        if not undo:
            return project.set_labels(pick(3), int(rng.choice(classes)))
        project.undo() if roll < 0.80 else project.redo()
        return None
    if roll < 0.97:  # a propagation finished: the window replaces the pseudo-labels
        project.save_pseudo_labels(ids, rng.choice(classes, len(ids)), rng.uniform(0.2, 1.0, len(ids)))
        return None
    project.add_class(f"new class {int(rng.integers(0, 10**9))}")
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--no-undo", action="store_true")
    parser.add_argument("--no-digest", action="store_true")
    parser.add_argument("--go", type=Path)
    # a person pauses between clicks; without a pause one process can hold the lock in turn after
    # turn while the other sleeps in SQLite's busy back-off, and the two never really interleave
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with Project(args.root, create=False) as project:
        reader = sqlite3.connect(project.db_path)  # a second connection sees only committed state
        print("ready", flush=True)
        while args.go and not args.go.exists():
            time.sleep(0.005)
        for k in range(1, args.actions + 1):
            event = act(project, rng, undo=not args.no_undo)
            digest = "-" if args.no_digest else state_digest(reader)
            print(f"ack {k} {event if event is not None else -1} {digest}", flush=True)
            if args.pause:
                time.sleep(args.pause)
        reader.close()


if __name__ == "__main__":
    sys.exit(main())
