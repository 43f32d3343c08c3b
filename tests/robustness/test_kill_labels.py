"""SIGKILL in the middle of a burst of label actions loses no acknowledged action."""

import signal
import sqlite3
import time

import numpy as np
import pytest

from explorer.store import Project
from tests.robustness.conftest import acks, copy_project, drain, integrity, start_burst
from tests.robustness.label_burst import state_digest

ACTIONS = 120
KILL_POINTS = 20


def _digest(root) -> str:
    with sqlite3.connect(root / ".explorer" / "project.sqlite") as db:
        return state_digest(db)


@pytest.mark.slow
def test_sigkill_at_many_points_keeps_every_acknowledged_action(label_template, tmp_path):
    # The same seeded burst run to the end gives the digest of the store after each action.
    reference_root = copy_project(label_template, tmp_path / "reference")
    proc = start_burst(reference_root, "--seed", "7", "--actions", str(ACTIONS))
    out, err = drain(proc, timeout=120)
    assert proc.returncode == 0, err
    reference = [d for _, _, d in acks(out.splitlines(keepends=True))]
    assert len(reference) == ACTIONS and len(set(reference)) > ACTIONS // 2  # the burst really changes things

    states = [_digest(label_template), *reference]  # states[k]: the store after k actions
    rng = np.random.default_rng(0)
    lost, outcomes = 0, []
    for point in range(KILL_POINTS):
        root = copy_project(label_template, tmp_path / f"kill-{point}")
        proc = start_burst(root, "--seed", "7", "--actions", str(ACTIONS))
        wait_for = int(rng.integers(0, ACTIONS))  # kill after this many acknowledgements ...
        lines = [proc.stdout.readline() for _ in range(wait_for)]
        time.sleep(float(rng.uniform(0, 0.004)))  # ... and a little, often mid-transaction
        proc.send_signal(signal.SIGKILL)
        rest, _ = drain(proc, timeout=60)
        assert proc.returncode == -signal.SIGKILL or proc.returncode == 0
        done = acks(lines + rest.splitlines(keepends=True))
        k = len(done)
        assert [d for _, _, d in done] == reference[:k]  # what it acknowledged is the reference path

        assert integrity(root / ".explorer" / "project.sqlite") == "ok"
        with Project(root, create=False) as project:  # reopening recovers the WAL
            assert project.item_ids().size > 0
        after = _digest(root)
        # every acknowledged action is there; at most the one in flight also committed
        lost += after not in states[k : k + 2]
        outcomes.append(k)
    print(f"\n{KILL_POINTS} kill points after {sorted(outcomes)} acknowledged actions: {lost} with labels lost")
    assert lost == 0
    assert len(set(outcomes)) > KILL_POINTS // 2  # the kill points were spread over the burst
