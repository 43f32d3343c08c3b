"""Two windows (or a window and a CLI command) writing one project at the same time.

The decision: concurrent use is safe, not refused. Every write is one short SQLite transaction
taken with BEGIN IMMEDIATE in WAL mode with a busy timeout, so writers queue instead of
failing, and each label event is computed inside its own transaction (its "before" is what the
store held at that moment). Array results are atomic files made current by one row update.
These tests write from several processes at once and check the store stays exactly consistent.
"""

import csv
import sqlite3
import subprocess
import sys

from explorer.store import Project
from tests.robustness.conftest import REPO, acks, copy_project, integrity, start_burst
from tests.robustness.label_burst import N_ITEMS


def _replay_matches_tables(db_path) -> None:
    """Replaying the undo log from an empty store rebuilds the label and rejection tables, and
    each change starts from exactly the state the previous ones left (no interleaved writes)."""
    with sqlite3.connect(db_path) as db:
        events = db.execute("SELECT id FROM events WHERE undone = 0 ORDER BY id").fetchall()
        labels: dict[int, tuple[int, str]] = {}
        rejected: set[tuple[int, int]] = set()
        for (event,) in events:
            for item, kind, oc, os_, nc, ns in db.execute(
                "SELECT item_id, kind, old_class, old_source, new_class, new_source FROM event_changes "
                "WHERE event_id = ? ORDER BY rowid",
                (event,),
            ):
                if kind == "label":
                    assert labels.get(item, (None, None)) == (oc, os_), f"event {event} item {item}"
                    if nc is None:
                        labels.pop(item, None)
                    else:
                        labels[item] = (nc, ns)
                else:
                    assert nc is not None and (item, nc) not in rejected, f"event {event} item {item}"
                    rejected.add((item, nc))
        stored = {i: (c, s) for i, c, s in db.execute("SELECT item_id, class_id, source FROM labels")}
        assert stored == labels
        assert set(db.execute("SELECT item_id, class_id FROM rejections").fetchall()) == rejected
        undone = [u for (u,) in db.execute("SELECT undone FROM events ORDER BY id")]
        assert undone == sorted(undone)  # undone actions are always the newest ones (a redo stack)


def _run_together(root, *commands):
    """Start label bursts (argument lists) and CLI commands (lists starting with 'cli') together;
    (exit code, stdout, stderr) of each."""
    go = root.parent / f"go-{root.name}"
    go.unlink(missing_ok=True)
    procs = []
    for command in commands:
        if command[0] == "cli":
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "explorer.cli", *command[1:]],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=REPO,
                )
            )
        else:
            procs.append(start_burst(root, *command, "--go", str(go)))
    go.touch()  # every burst is open and waiting: start them at once
    outputs = [p.communicate(timeout=120) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def test_two_windows_label_at_once_without_losing_or_mixing_actions(label_template, tmp_path):
    root = copy_project(label_template, tmp_path / "shared")
    results = _run_together(
        root,
        ["--seed", "1", "--actions", "150", "--no-undo", "--no-digest", "--pause", "0.005"],
        ["--seed", "2", "--actions", "150", "--no-undo", "--no-digest", "--pause", "0.005"],
    )
    for rc, _, err in results:
        assert rc == 0, err
    db_path = root / ".explorer" / "project.sqlite"
    assert integrity(db_path) == "ok"
    _replay_matches_tables(db_path)
    with sqlite3.connect(db_path) as db:
        kept = {e for (e,) in db.execute("SELECT id FROM events WHERE undone = 0")}
    made = []
    for _, out, _ in results:
        done = acks(out.splitlines(keepends=True))
        assert len(done) == 150
        made.append({e for _, e, _ in done if e >= 0})
        # without undo nothing may disappear: every acknowledged event of either window is there
        assert made[-1] <= kept
    assert min(made[0]) < max(made[1]) and min(made[1]) < max(made[0])  # they really wrote at once


def test_window_with_undo_and_a_cli_import_share_the_project(label_template, tmp_path):
    root = copy_project(label_template, tmp_path / "shared")
    manifest = tmp_path / "labels.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows((f"img/{k:04d}.png", f"imported {k % 3}") for k in range(0, N_ITEMS, 2))
    results = _run_together(
        root,
        ["--seed", "3", "--actions", "150", "--no-digest"],
        ["--seed", "4", "--actions", "150", "--no-digest"],
        ["cli", "labels", "import", str(root), str(manifest)],
        ["cli", "status", str(root)],
    )
    for rc, _, err in results:
        assert rc == 0, err
    assert "label(s) set" in results[2][1]
    db_path = root / ".explorer" / "project.sqlite"
    assert integrity(db_path) == "ok"
    _replay_matches_tables(db_path)
    with Project(root, create=False) as project:
        assert {"imported 0", "imported 1", "imported 2"} <= {c.name for c in project.classes()}


def test_data_version_tells_a_window_that_another_process_wrote(label_template, tmp_path):
    root = copy_project(label_template, tmp_path / "shared")
    with Project(root, create=False) as window:
        before = window.data_version()
        window.set_labels([1], window.classes()[0].id)  # its own writes do not count
        assert window.data_version() == before
        rc, _, err = _run_together(root, ["--seed", "5", "--actions", "3", "--no-digest"])[0]
        assert rc == 0, err
        assert window.data_version() != before
