import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BURST = REPO / "tests" / "robustness" / "label_burst.py"


def drain(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """(rest of stdout, stderr) of a child we read lines from, once it ends (killed after
    ``timeout`` s). Read through the same buffered files as ``readline``: ``communicate()`` reads
    the raw pipes and silently drops lines ``readline`` had already buffered (acks looked lost)."""
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait()
    finally:
        watchdog.cancel()
    return out, err


def integrity(db_path: Path) -> str:
    """SQLite's own verdict on the database file ('ok' when sound)."""
    with sqlite3.connect(db_path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def start_burst(root: Path, *args: str) -> subprocess.Popen:
    """The label-action child process (see label_burst.py), started and waited on until ready."""
    proc = subprocess.Popen(
        [sys.executable, str(BURST), str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"child did not start: {line!r} {proc.stderr.read() if not line else ''}"
    return proc


def acks(lines: list[str]) -> list[tuple[int, int, str]]:
    """(action number, event id, digest) of the complete ``ack`` lines (a line cut by the kill is not one)."""
    out = []
    for line in lines:
        parts = line.split()
        if line.endswith("\n") and len(parts) == 4 and parts[0] == "ack":
            out.append((int(parts[1]), int(parts[2]), parts[3]))
    return out


@pytest.fixture(scope="session")
def label_template(tmp_path_factory) -> Path:
    """A ready label project (see label_burst.make_project) to copy for each run."""
    from tests.robustness.label_burst import make_project

    root = tmp_path_factory.mktemp("label-template") / "collection"
    make_project(root)
    return root


def copy_project(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest
