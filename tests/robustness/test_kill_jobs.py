"""SIGKILL during training, embedding or mapping: the last checkpoint stays loadable and resume
continues from it; the previous arrays stay current; no array file is ever left truncated."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.images.scan import scan_collection
from explorer.store import Project
from explorer.store.embedding_file import PARTIAL, StoredVectors
from tests.blobs import write_blobs
from tests.robustness.conftest import REPO, integrity

RUN_ARRAYS = {"embed": ("item_ids", "embeddings"), "map": ("item_ids", "xy", "knn_indices", "knn_similarities")}


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "explorer.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def _kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL ``proc`` after ``seconds``; True when it was still running (really killed)."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return proc.returncode == -signal.SIGKILL


def _collection(root: Path, per_class: int) -> Path:
    write_blobs(root, per_class=per_class, size=16)
    with Project(root) as project:
        scan_collection(project)
    return root


def _current(root: Path, kind: str) -> int:
    """The current run of ``kind``, after checking the store and every array file in it."""
    assert integrity(root / ".explorer" / "project.sqlite") == "ok"
    for path in (root / ".explorer" / "runs").rglob("*.npy"):
        if path.name == PARTIAL:  # a stopped embed's rows, maybe cut short: resuming reads or drops it
            StoredVectors.load(int(path.parent.name), path.parent, finished=False)  # never raises
            continue
        np.load(path, allow_pickle=False)  # a final name always holds a whole array
    with Project(root, create=False) as project:
        run = project.latest_run(kind)
        arrays = [project.load_run_array(run.id, name) for name in RUN_ARRAYS[kind]]
        assert all(a is not None and len(a) == len(arrays[0]) for a in arrays)
        assert set(arrays[0].tolist()) <= set(project.item_ids().tolist())
        return run.id


@pytest.mark.slow
def test_killing_embed_or_map_leaves_the_previous_result_current(tmp_path):
    root = str(_collection(tmp_path / "collection", per_class=100))
    _finish(_cli("embed", root, "--encoder", "pixels"))
    _finish(_cli("map", root))
    embed_run, map_run = _current(Path(root), "embed"), _current(Path(root), "map")
    with Project(root, create=False) as project:  # how long each run took, from start to done
        seconds = {r.kind: r.finished - r.started for r in project.runs()}

    rng = np.random.default_rng(0)
    interrupted = 0

    def check(kind: str, previous: int, fraction: float, *options: str) -> int:
        """Kill `explorer KIND` ``fraction`` of the way through its run; then the previous run is
        current, or the new one if it was already done."""
        nonlocal interrupted
        with Project(root, create=False) as project:
            last = project.runs(kind)[-1].id
        proc = _cli(kind, root, *options)
        _wait_for_run(Path(root), kind, last, proc)
        _kill_after(proc, fraction * seconds[kind])
        current = _current(Path(root), kind)
        with Project(root, create=False) as project:
            newest = project.runs(kind)[-1]
        if newest.status == "done":
            assert current == newest.id
        else:
            interrupted += 1
            assert current == previous and newest.status == "interrupted"  # killed: never marked done
        return current

    for fraction in rng.uniform(0.0, 0.8, 8):  # decoding, embedding, writing the arrays
        embed_run = check("embed", embed_run, fraction, "--encoder", "pixels")
    for fraction in (0.2, 0.6):  # during the index, and during UMAP
        map_run = check("map", map_run, fraction, "--fresh")
    print(f"\n10 kill points in embed/map, {interrupted} interrupted a run; previous arrays current every time")
    assert interrupted >= 4

    with Project(root, create=False) as project:  # killed runs read as interrupted, never as running
        assert {r.status for r in project.runs()} == {"done", "interrupted"}
    _finish(_cli("embed", root, "--encoder", "pixels"))
    _finish(_cli("map", root))
    assert _current(Path(root), "embed") > embed_run and _current(Path(root), "map") > map_run


def _wait_for_run(root: Path, kind: str, after: int, proc: subprocess.Popen) -> None:
    """Until ``proc`` has recorded a new run of ``kind`` (or ended)."""
    import sqlite3

    with sqlite3.connect(root / ".explorer" / "project.sqlite") as db:
        while proc.poll() is None:
            if db.execute("SELECT 1 FROM runs WHERE kind = ? AND id > ?", (kind, after)).fetchone():
                return
            time.sleep(0.005)


def _checkpoint_epoch(path: Path) -> int:
    from explorer.ssl.checkpoint import load_checkpoint

    return int(load_checkpoint(path)["epoch"])


def _wait_for_checkpoint(folder: Path, proc: subprocess.Popen, newer_than: float = 0.0) -> Path:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in folder.glob("runs/*/checkpoint.pt") if p.stat().st_mtime > newer_than]
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint written: {proc.communicate()[1]}")


EPOCHS = 30


@pytest.mark.slow
def test_killing_training_mid_epoch_keeps_the_checkpoint_and_resume_continues(tmp_path):
    root = _collection(tmp_path / "collection", per_class=11)  # 33 images: 4 steps an epoch
    state = root / ".explorer"
    settings = ["--backbone", "small-cnn", "--image-size", "16", "--batch-size", "8", "--device", "cpu"]
    rng = np.random.default_rng(1)

    # enough epochs that a fast machine is still training when the kill comes
    train = _cli("train", str(root), *settings, "--epochs", str(EPOCHS))
    checkpoint = _wait_for_checkpoint(state, train)  # epoch 1 is done ...
    assert _kill_after(train, float(rng.uniform(0.05, 0.4)))  # ... and a later one is under way
    epochs = [_checkpoint_epoch(checkpoint)]
    assert 1 <= epochs[0] < EPOCHS

    resumed = _cli("train", str(root), "--resume")
    _wait_for_checkpoint(state, resumed, newer_than=checkpoint.stat().st_mtime)
    if _kill_after(resumed, float(rng.uniform(0.05, 0.4))):
        epochs.append(_checkpoint_epoch(checkpoint))
        assert epochs[1] > epochs[0]  # it continued, not restarted
        _finish(_cli("train", str(root), "--resume"))
    else:
        assert resumed.returncode == 0
    assert not [p for p in state.rglob("*") if p.is_file() and p.suffix == ".pt" and p != checkpoint]

    from explorer.ssl.checkpoint import load_checkpoint

    final = load_checkpoint(checkpoint)
    assert final["epoch"] == EPOCHS and [h["epoch"] for h in final["history"]] == list(range(1, EPOCHS + 1))
    with Project(root, create=False) as project:
        (run,) = project.runs("train")
        assert run.status == "done" and run.metrics["epochs_done"] == EPOCHS
    _finish(_cli("embed", str(root)))  # the resumed encoder embeds the collection
    assert _current(root, "embed")


def test_two_embeddings_at_once_both_finish_and_the_newer_is_current(tmp_path):
    root = _collection(tmp_path / "collection", per_class=30)
    procs = [_cli("embed", str(root), "--encoder", "pixels") for _ in range(2)]
    for proc in procs:
        _finish(proc)
    current = _current(root, "embed")
    with Project(root, create=False) as project:
        runs = project.runs("embed")
        assert [r.status for r in runs] == ["done", "done"] and current == runs[-1].id
        first, second = (project.load_run_array(r.id, "embeddings") for r in runs)
        np.testing.assert_array_equal(first, second)  # same input, same result: nothing mixed
