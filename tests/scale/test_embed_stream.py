"""Embedding streams into a memory-mapped file, continues where it stopped and skips unchanged files."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from explorer import workflow
from explorer.cli import main
from explorer.images import pool
from explorer.jobs import Cancelled, CancelToken
from explorer.store import Project
from explorer.store.embedding_file import PARTIAL, ROWS_DONE
from explorer.workflow import evaluation
from tests.blobs import mapped_blobs


@pytest.fixture
def blobs(tmp_path):
    """60 scanned PNGs (three colour classes) with their truth; returns (folder, truth)."""
    folder = tmp_path / "blobs"
    return folder, mapped_blobs(folder, map_k=None)


@pytest.fixture
def decodes(monkeypatch):
    """Every file the workflow decodes, in order."""
    seen = []
    real = pool.load_rgb_array

    def counting(path, size):
        seen.append(path.name)
        return real(path, size)

    monkeypatch.setattr(pool, "load_rgb_array", counting)
    return seen


def reference_pixels(project):
    ids, images = workflow.load_images(project, workflow.PIXEL_SIZE)
    return ids, workflow.pixel_vectors(images)


def test_embed_streams_in_chunks_into_the_same_vectors_as_one_pass(blobs, monkeypatch):
    folder, _ = blobs
    with Project(folder) as project:
        ids, expected = reference_pixels(project)
        monkeypatch.setattr(evaluation, "load_images", lambda *a, **k: pytest.fail("embed must not decode everything"))
        reports = []
        run = workflow.embed(project, workflow.PIXELS, chunk_rows=7, progress=reports.append)
        current = workflow.current_embeddings(project)
        assert current.run_id == run
        assert isinstance(current.vectors, np.memmap) and current.vectors.dtype == np.float32
        np.testing.assert_array_equal(current.item_ids, ids)
        np.testing.assert_allclose(current.vectors, expected, atol=1e-6)
        embedded = [r.done for r in reports if r.step == "embed"]
        assert embedded[-1] == 60 and embedded == sorted(embedded) and len(set(embedded)) >= 9  # 60 / 7 chunks
        assert sorted(p.name for p in project.run_dir(run).iterdir()) == [
            "embeddings.npy",
            "file_stamps.npy",
            "item_ids.npy",
        ]
        assert (
            project.run(run).metrics.items() >= {"items": 60, "embedded": 60, "reused": 0, "dtype": "float32"}.items()
        )


def test_float16_stores_half_the_bytes_and_every_reader_still_works(blobs, tmp_path):
    folder, truth = blobs
    with Project(folder) as project:
        full = workflow.embed(project, workflow.PIXELS, fresh=True)
        half = workflow.embed(project, workflow.PIXELS, dtype="float16", chunk_rows=16)
        assert project.run(half).metrics["reused"] == 60  # float32 vectors serve a float16 run
        size = lambda run: (project.run_dir(run) / "embeddings.npy").stat().st_size  # noqa: E731
        assert size(half) < 0.51 * size(full)
        current = workflow.current_embeddings(project)
        assert current.run_id == half and current.vectors.dtype == np.float16
        np.testing.assert_allclose(current.vectors, project.load_run_array(full, "embeddings"), atol=1e-3)

        workflow.make_map(project, k=5)
        by_path = {item.path: item.id for item in project.items()}
        for name in ("img-0000.png", "img-0020.png", "img-0040.png"):
            project.set_labels([by_path[name]], project.add_class(truth[name]).id)
        result = workflow.propagate(project)
        names = {c.id: c.name for c in project.classes()}
        right = [
            names.get(int(c)) == truth[project.item(int(i)).path] for i, c in zip(result.item_ids, result.class_ids)
        ]
        assert np.mean(right) > 0.9
        assert len(workflow.suggest(project, n=3).paths) == 3
        truth_csv = tmp_path / "truth.csv"
        truth_csv.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in truth.items()))
        report = workflow.evaluate(project, truth_csv, k=5)
        assert report.metrics()  # the table for float16 vectors, next to the float32 baselines
        table = tmp_path / "out.parquet"
        workflow.export(project, "parquet", table)
        import pyarrow.parquet as pq

        assert len(pq.read_table(table).column("embedding")[0].as_py()) == 3 * 32 * 32


def test_a_cancelled_embed_is_continued_by_the_next_one(blobs, decodes):
    folder, _ = blobs
    token = CancelToken()

    def stop_after_two_chunks(report):
        if report.step == "embed" and report.done >= 20:
            token.cancel()

    with Project(folder) as project:
        ids, expected = reference_pixels(project)
        decodes.clear()
        with pytest.raises(Cancelled):
            workflow.embed(project, workflow.PIXELS, chunk_rows=10, progress=stop_after_two_chunks, cancel=token)
        stopped = project.runs("embed")[-1]
        assert stopped.status == "cancelled" and stopped.metrics["rows_done"] >= 20
        assert (project.run_dir(stopped.id) / PARTIAL).exists()
        assert workflow.current_embeddings(project) is None  # nothing half-done became current
        before = len(decodes)
        decodes.clear()
        run = workflow.embed(project, workflow.PIXELS, chunk_rows=10)
        metrics = project.run(run).metrics
        assert metrics["resumed"] == stopped.metrics["rows_done"] and metrics["resumed_from"] == stopped.id
        assert metrics["embedded"] == 60 - metrics["resumed"] == len(decodes)
        assert before + len(decodes) <= 60 + 10  # at most the chunk decoded ahead is done twice
        current = workflow.current_embeddings(project)
        np.testing.assert_array_equal(current.item_ids, ids)
        np.testing.assert_allclose(current.vectors, expected, atol=1e-6)
        assert not (project.run_dir(stopped.id) / PARTIAL).exists()  # its rows live on in the new run


def test_unchanged_files_keep_their_vectors_and_changed_ones_are_embedded_again(blobs, decodes):
    folder, _ = blobs
    with Project(folder) as project:
        first = workflow.embed(project, workflow.PIXELS)
        Image.new("RGB", (24, 24), (250, 250, 0)).save(folder / "img-0005.png")
        os.utime(folder / "img-0005.png", ns=(1, 1))  # a different mtime, whatever the clock says
        (folder / "img-0007.png").unlink()
        Image.new("RGB", (24, 24), (0, 0, 0)).save(folder / "new.png")
        workflow.scan(project)
        decodes.clear()
        second = workflow.embed(project, workflow.PIXELS)
        assert sorted(decodes) == ["img-0005.png", "new.png"]
        assert (
            project.run(second).metrics.items()
            >= {"items": 60, "reused": 58, "embedded": 2, "reused_from": first}.items()
        )
        ids, expected = reference_pixels(project)
        current = workflow.current_embeddings(project)
        np.testing.assert_array_equal(current.item_ids, ids)
        np.testing.assert_allclose(current.vectors, expected, atol=1e-6)
        decodes.clear()
        workflow.embed(project, workflow.PIXELS, fresh=True)
        assert len(decodes) == 60


def test_another_encoder_reuses_nothing(blobs, decodes):
    folder, _ = blobs
    from explorer.ssl.checkpoint import save_checkpoint
    from explorer.ssl.encoder import untrained_encoder

    with Project(folder) as project:
        for seed in (0, 1):  # the same architecture with other weights (as after `train --resume`)
            encoder = untrained_encoder("small-cnn", 16, seed=seed, device="cpu")
            state = {"encoder": encoder.backbone.state_dict(), "backbone": "small-cnn", "image_size": 16}
            state |= {"feature_dim": encoder.feature_dim, "epoch": 1, "config": {}}
            save_checkpoint(state, folder.parent / f"enc{seed}.pt")
        runs = [workflow.embed(project, str(folder.parent / f"enc{s}.pt"), device="cpu") for s in (0, 1, 0)]
        metrics = [project.run(r).metrics for r in runs]
        assert [m["reused"] for m in metrics] == [0, 0, 60]
        keys = [project.run(r).params["encoder_key"] for r in runs]
        assert keys[0] == keys[2] != keys[1]


def test_a_file_that_fails_while_embedding_is_left_out(blobs):
    folder, _ = blobs
    with Project(folder) as project:
        (folder / "img-0003.png").write_bytes(b"no longer a png")
        run = workflow.embed(project, workflow.PIXELS, chunk_rows=8)
        ids = project.load_run_array(run, "item_ids")
        assert (
            len(ids)
            == len(project.load_run_array(run, "embeddings"))
            == len(project.load_run_array(run, "file_stamps"))
            == 59
        )
        assert project.item_by_path("img-0003.png").id not in ids.tolist()
        assert not project.item_by_path("img-0003.png").readable
        assert project.run(run).metrics["items"] == 59


def test_a_killed_embed_keeps_the_rows_it_saved(blobs):
    """kill -9 mid-run: the saved rows are on disk (flushed before recorded) and the next run uses them."""
    folder, _ = blobs
    script = textwrap.dedent(
        f"""
        import time
        from explorer import workflow
        from explorer.images import pool
        from explorer.store import Project, embedding_file
        embedding_file.CHECKPOINT_S = 0.0
        real = pool.load_rgb_array
        def slow(path, size):
            time.sleep(0.05)
            return real(path, size)
        pool.load_rgb_array = slow
        with Project({str(folder)!r}) as project:
            workflow.embed(project, workflow.PIXELS, chunk_rows=4)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 60
        done = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((folder / ".explorer" / "runs").glob(f"*/{ROWS_DONE}"))
            if found:
                try:
                    done = np.load(found[0])
                except (ValueError, OSError):
                    done = None
                if done is not None and done.sum() >= 12:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the embed finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with Project(folder) as project:
        killed = project.runs("embed")[-1]
        assert killed.status == "interrupted"
        run = workflow.embed(project, workflow.PIXELS)
        metrics = project.run(run).metrics
        assert 12 <= metrics["resumed"] < 60 and metrics["resumed_from"] == killed.id
        ids, expected = reference_pixels(project)
        np.testing.assert_allclose(workflow.current_embeddings(project).vectors, expected, atol=1e-6)


def test_cli_embed_float16_and_fresh(blobs, capsys):
    folder, _ = blobs
    assert main(["embed", str(folder), "--encoder", "pixels", "--float16"]) == 0
    assert "dtype=float16" in capsys.readouterr().out
    assert main(["embed", str(folder), "--encoder", "pixels", "--float16"]) == 0
    assert "reused=60" in capsys.readouterr().out
    assert main(["embed", str(folder), "--encoder", "pixels", "--fresh"]) == 0
    out = capsys.readouterr().out
    assert "dtype=float32" in out and "embedded=60" in out
    assert main(["embed", str(folder), "--from", "x.npy", "--float16"]) == 1
    assert "--float16" in capsys.readouterr().err
    help_text = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "embed", "--help"], capture_output=True, text=True
    ).stdout
    assert "--fresh" in help_text and "continues an interrupted" in " ".join(help_text.split())
