"""Runs: a record per long computation (train, embed, map) and its arrays in ``runs/ID/``.

A run's arrays count once the database marks it done, so a crash mid-write never leaves a
half-new result in use.
  embed run: ``item_ids`` (N,) int64, ``embeddings`` (N, D) float32 or float16 with L2-normalised
             rows, ``file_stamps`` (N, 2) int64 (written row by row: ``explorer.store.embedding_file``);
  map run:   ``item_ids`` (N,), ``xy`` (N, 2) float32, ``knn_indices`` (N, k+1) int64 row
             positions with column 0 the row itself (-1 = none), ``knn_similarities`` (N, k+1)
             float32 cosine;
  train run: ``checkpoint.pt`` (see ``explorer.ssl``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.store.arrays import load_array, save_array
from explorer.store.database import Database


@dataclass(frozen=True)
class Run:
    id: int
    kind: str
    params: dict
    metrics: dict
    status: str
    started: float
    finished: float | None


class Runs(Database):
    """Runs and their arrays, under ``state_dir``."""

    state_dir: Path

    def start_run(self, kind: str, params: dict) -> int:
        """A new 'running' run; it records which process runs it, so that a run whose process was
        killed reads as 'interrupted' (see ``runs``) instead of running forever."""
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        with self.transaction() as db:
            return db.execute(
                "INSERT INTO runs(kind, params, metrics, started) VALUES (?, ?, ?, ?)",
                (kind, json.dumps(params), owner, time.time()),
            ).lastrowid

    def finish_run(self, run_id: int, status: str, metrics: dict | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, metrics = ?, finished = ? WHERE id = ?",
                (status, json.dumps(metrics or {}), time.time(), run_id),
            )

    def update_run_metrics(self, run_id: int, metrics: dict) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET metrics = ? WHERE id = ?", (json.dumps(metrics), run_id))

    def runs(self, kind: str | None = None) -> list[Run]:
        sql = "SELECT id, kind, params, metrics, status, started, finished FROM runs"
        args: tuple = ()
        if kind:
            sql += " WHERE kind = ?"
            args = (kind,)
        out = []
        for i, k, p, m, s, st, f in self._query(sql + " ORDER BY id", args):
            metrics = json.loads(m)
            if s == "running" and _owner_gone(metrics):
                s = "interrupted"
            out.append(Run(i, k, json.loads(p), metrics, s, st, f))
        return out

    def run(self, run_id: int) -> Run | None:
        found = [r for r in self.runs() if r.id == run_id]
        return found[0] if found else None

    def run_dir(self, run_id: int) -> Path:
        path = self.state_dir / "runs" / str(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---- run results (arrays) -------------------------------------------------------------
    def save_run_arrays(self, run_id: int, **arrays: np.ndarray) -> None:
        """Save a run's arrays atomically into its folder; they count once the run is 'done'."""
        folder = self.run_dir(run_id)
        for name, array in arrays.items():
            save_array(folder / f"{name}.npy", array)

    def load_run_array(self, run_id: int, name: str, mmap: bool = False) -> np.ndarray | None:
        return load_array(self.state_dir / "runs" / str(run_id) / f"{name}.npy", mmap=mmap)

    def latest_run(self, kind: str) -> Run | None:
        """The newest finished run of ``kind`` ('train', 'embed', 'map', ...), or None."""
        done = [r for r in self.runs(kind) if r.status == "done"]
        return done[-1] if done else None


def _owner_gone(metrics: dict) -> bool:
    """True when the process that started a run on this machine no longer exists (killed, crashed)."""
    pid = metrics.get("pid")
    if not isinstance(pid, int) or metrics.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists but is not ours to signal
        return False
    return False
