"""Bad input at the command line: a message naming the problem, a non-zero exit, and the store
exactly as it was (labels, classes, undo history, runs, pseudo-labels and the state folder)."""

import sqlite3
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from explorer import workflow
from explorer.cli import main
from explorer.images.scan import scan_collection
from explorer.store import Project
from tests.blobs import write_blobs


def snapshot(root: Path) -> dict:
    """Everything the store holds, as plain data, plus the files in its state folder."""
    state = root / ".explorer"
    with Project(root, create=False) as project:
        table = project.label_table()
        labels = [table.item_ids.tolist(), table.class_ids.tolist(), table.source.tolist()]
    with sqlite3.connect(state / "project.sqlite") as db:
        tables = {
            name: db.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()
            for name in ("items", "classes", "labels", "rejections", "pseudo_labels", "events", "event_changes", "runs")
        }
    files = sorted(
        (str(p.relative_to(state)), p.stat().st_size)
        for p in state.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    )
    return {"label_table": labels, **tables, "files": files}


@pytest.fixture(scope="module")
def project_root(tmp_path_factory) -> Path:
    """12 images, two classes, labels with undo history, pseudo-labels, a pixel embedding, and a
    training run whose checkpoint got damaged."""
    from explorer.ssl.trainer import TrainConfig

    root = tmp_path_factory.mktemp("bad-input") / "collection"
    write_blobs(root, per_class=4, size=16)
    with Project(root) as project:
        scan_collection(project)
        red, blue = project.add_class("red"), project.add_class("blue")
        ids = project.item_ids()
        project.set_labels(ids[:2], red.id)
        project.set_labels(ids[-2:], blue.id)
        project.save_pseudo_labels(ids, np.where(ids % 2 == 0, red.id, blue.id), np.full(len(ids), 0.7))
        project.reject_pseudo(ids[3:4])
        workflow.embed(project, workflow.PIXELS)
        run = project.start_run("train", asdict(TrainConfig(backbone="small-cnn", image_size=16, epochs=2)))
        (project.run_dir(run) / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip file")
        project.finish_run(run, "done", {"epochs_done": 2})
    return root


def _torch_files(folder: Path) -> dict[str, Path]:
    import torch

    from explorer.ssl.backbones import make_backbone
    from explorer.ssl.checkpoint import save_checkpoint

    files = {"corrupt": folder / "corrupt.pt", "foreign": folder / "foreign.pt", "wrong_arch": folder / "resnet.pt"}
    files["corrupt"].write_bytes(np.random.default_rng(0).bytes(5000))
    torch.save({"state_dict": {"w": torch.zeros(3)}, "epoch": 3}, files["foreign"])  # someone else's checkpoint
    resnet, dim = make_backbone("resnet18", 16)
    state = {"encoder": resnet.state_dict(), "backbone": "small-cnn", "feature_dim": dim, "image_size": 16}
    save_checkpoint({**state, "epoch": 1, "config": {}}, files["wrong_arch"])  # says small-cnn, holds ResNet weights
    return files


def _csv(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _cases(root: Path, tmp: Path) -> list[tuple[list[str], int, str]]:
    """(argv, exit code, words the message must contain)."""
    r = str(root)
    known = "img-0000.png"
    files = _torch_files(tmp)
    csvs = {
        "columns": _csv(tmp, "columns.csv", "file,class\nimg-0000.png,red\n"),
        "unknown": _csv(tmp, "unknown.csv", "path,label\nnot/here.png,red\nnor/there.png,blue\n"),
        "empty": _csv(tmp, "empty.csv", f"path,label\n{known},\nimg-0001.png,  \n"),
        "header_only": _csv(tmp, "header.csv", "path,label\n"),
        "conflict": _csv(tmp, "conflict.csv", f"path,label\n{known},red\n{known},red\n{known},blue\n"),
        "giant_field": _csv(tmp, "giant.csv", f"path,label\n{known},{'x' * 200_000}\n"),
        "many_rows": _csv(
            tmp, "many.csv", "path,label\n" + "".join(f"elsewhere/{k}.png,red\n" for k in range(200_000))
        ),
        "binary": _csv(tmp, "binary.csv", np.random.default_rng(1).bytes(3000)),
        "extra_values": _csv(tmp, "extra.csv", f"path,label\n{known},red,seed,1,surprise\n"),
        "bad_source": _csv(tmp, "source.csv", f"path,label,source\n{known},red,guess\n"),
        "bad_json": _csv(tmp, "lines.jsonl", '{"path": "img-0000.png", "label": "red"}\n{not json\n'),
    }
    c = lambda name: str(csvs[name])  # noqa: E731
    return [
        (["labels", "import", r, c("columns")], 1, "path,label"),
        (["labels", "import", r, c("unknown")], 1, "not in the collection"),
        (["labels", "import", r, c("empty")], 1, "empty"),
        (["labels", "import", r, c("header_only")], 1, "no row has a label"),
        (["labels", "import", r, c("conflict")], 1, "two different labels"),
        (["labels", "import", r, c("giant_field")], 1, "field larger than field limit"),
        (["labels", "import", r, c("many_rows")], 1, "200000 row(s) name files not in the collection"),
        (["labels", "import", r, c("binary")], 1, "not UTF-8"),
        (["labels", "import", r, c("extra_values")], 1, "more values than columns"),
        (["labels", "import", r, c("bad_source")], 1, "unknown source 'guess'"),
        (["labels", "import", r, c("bad_json")], 1, "line 2: not valid JSON"),
        (["labels", "import", r, str(tmp / "absent.csv")], 1, "label file not found"),
        (["labels", "import", r, c("conflict"), "--as", "pseudo"], 2, "invalid choice"),
        (["train", r, "--epochs", "-3"], 2, "--epochs: must be at least 1, got -3"),
        (["train", r, "--epochs", "many"], 2, "expected a whole number, got 'many'"),
        (["train", r, "--max-minutes", "0"], 2, "must be more than 0"),
        (["train", r, "--method", "telepathy"], 2, "invalid choice: 'telepathy'"),
        (["train", r, "--backbone", "abacus"], 1, "unknown backbone 'abacus'"),
        (["train", r, "--device", "quantum"], 1, "unknown device 'quantum'"),
        (["train", r, "--resume"], 1, "corrupt or not a torch file"),
        (["train", r, "--eval-labels", c("binary")], 1, "not UTF-8"),
        (["train", r, "--eval-labels", c("columns")], 1, "path,label"),
        (["train", r, "--max-images", "1"], 1, "max_images must be a whole number of at least 2"),
        (["evaluate", r, "--labels", c("giant_field")], 1, "field larger than field limit"),
        (["scan", str(tmp / "no-such-folder")], 1, "image folder not found"),
        (["embed", r, "--encoder", str(files["corrupt"])], 1, "corrupt or not a torch file"),
        (["embed", r, "--encoder", str(files["foreign"])], 1, "not an Embedding Explorer encoder checkpoint"),
        (["embed", r, "--encoder", str(files["wrong_arch"])], 1, "does not match its backbone 'small-cnn'"),
        (["embed", r, "--encoder", str(tmp / "absent.pt")], 1, "encoder file not found"),
        (["embed", r, "--encoder", "99"], 1, "no training run 99"),
        (["embed", r, "--batch-size", "0"], 2, "must be at least 1"),
        (["map", r, "--k", "1"], 1, "--k must be at least 2"),
        (["propagate", r], 1, "no map yet"),
        (["export", r, str(tmp / "out.csv"), "--include", "seed,rumour"], 1, "unknown label source(s) rumour"),
        (["export", r, str(tmp / "out.csv"), "--min-confidence", "2"], 2, "between 0 and 1"),
        (["export", r, str(tmp / "out.xml"), "--format", "xml"], 2, "invalid choice: 'xml'"),
    ]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejects a value before anything runs
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_each_bad_input_names_the_problem_exits_non_zero_and_changes_nothing(project_root, tmp_path, capsys):
    before = snapshot(project_root)
    cases = _cases(project_root, tmp_path)
    for argv, code, words in cases:
        got, err = _run(argv, capsys)
        assert (got, words in err) == (code, True), f"explorer {' '.join(argv)} -> {got}: {err}"
        assert "Traceback" not in err
        assert snapshot(project_root) == before, f"explorer {' '.join(argv)} changed the store"
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.xml").exists()
    print(f"\n{len(cases)} bad command lines: each exited non-zero with its reason, the store unchanged")


def test_a_folder_without_a_project_stays_untouched(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    for verb in ("status", "propagate", "embed", "map"):
        code, err = _run([verb, str(tmp_path / "photos")], capsys)
        assert code == 1 and "explorer scan" in err
    assert list((tmp_path / "photos").iterdir()) == []


def test_a_read_only_folder_says_so_and_suggests_a_state_folder(tmp_path, capsys, monkeypatch):
    """The state folder cannot be made (a read-only mount: simulated, since tests may run as root,
    who can write anywhere): a message naming the folder and --state, no traceback; --state works."""
    images = tmp_path / "dvd"
    write_blobs(images, per_class=2)
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if images in self.parents or self == images / ".explorer":
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(["scan", str(images)]) == 1
    err = capsys.readouterr().err
    assert f"{images / '.explorer'}" in err and "Permission denied" in err and "--state DIR" in err
    assert "Traceback" not in err and not (images / ".explorer").exists()
    assert main(["scan", str(images), "--state", str(tmp_path / "state")]) == 0
    assert (tmp_path / "state" / "project.sqlite").exists()


def test_the_window_asks_for_a_state_folder_when_the_images_are_read_only(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    from explorer.gui import main_window
    from explorer.store import StateNotWritable

    images = tmp_path / "dvd"
    write_blobs(images, per_class=2)
    opened = []
    window = main_window.MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    original = window.session.open_project

    def open_project(root, state_dir=None):
        opened.append(state_dir)
        if state_dir is None:
            raise StateNotWritable(f"cannot keep this project's state in {root}/.explorer")
        return original(root, state_dir)

    monkeypatch.setattr(window.session, "open_project", open_project)
    asked = []
    monkeypatch.setattr(
        main_window.QFileDialog, "getExistingDirectory", lambda *a: asked.append(a[1]) or str(tmp_path / "state")
    )
    assert window.open_project(images)
    assert opened == [None, str(tmp_path / "state")] and "read-only" in asked[0]
    assert window.session.project.state_dir == (tmp_path / "state").resolve()
    window.jobs.wait(30_000)  # the scan it started
