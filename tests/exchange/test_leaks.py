"""An export split into train and val warns when near-duplicates fall on both sides."""

import shutil

import numpy as np
from PIL import Image

from explorer import workflow
from explorer.exchange.export import export, preview_export
from explorer.store import Project


def _noise(root, n: int = 60) -> dict[str, str]:
    """n images of random noise (no two alike), labelled red, green, blue in turn."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    truth = {}
    for k in range(n):
        name = f"img-{k:04d}.png"
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / name)
        truth[name] = ("red", "green", "blue")[k % 3]
    return truth


def _labelled(root, twins: int):
    truth = _noise(root)
    for name in sorted(truth)[:twins]:  # exact copies: the same image twice in the collection
        shutil.copy(root / name, root / f"twin-{name}")
        truth[f"twin-{name}"] = truth[name]
    project = Project(root)
    workflow.scan(project)
    workflow.embed(project, workflow.PIXELS)
    workflow.make_map(project, k=8)
    by_path = {item.path: item.id for item in project.items()}
    for colour in ("red", "green", "blue"):
        cls = project.add_class(colour)
        project.set_labels([by_path[p] for p, c in truth.items() if c == colour], cls.id)
    return project, truth


def _sides(tree) -> dict[str, set[str]]:
    """image name -> the splits it was written to."""
    found: dict[str, set[str]] = {}
    for path in tree.rglob("*.png"):
        found.setdefault(path.name.removeprefix("twin-"), set()).add(path.relative_to(tree).parts[0])
    return found


def test_twins_stay_on_one_side_of_the_split(tmp_path):
    project, truth = _labelled(tmp_path / "blobs", twins=20)
    with project:
        preview = preview_export(project, fmt="imagefolder", split=0.5)
        report = export(project, "imagefolder", tmp_path / "tree", split=0.5, seed=0)
    assert any("40 near-duplicate image(s) in 20 group(s)" in note for note in preview.notes)  # before writing
    sides = _sides(tmp_path / "tree")
    assert len(sides) == 60 and all(len(s) == 1 for s in sides.values())
    assert report.leaks == 0 and any("kept on one side" in note for note in report.notes)
    trained = sum("train" in s for s in sides.values())
    assert 20 <= trained <= 40  # still about half: whole pairs moved, not the balance


def test_twins_split_across_train_and_val_are_reported_when_allowed(tmp_path):
    project, truth = _labelled(tmp_path / "blobs", twins=20)
    with project:
        preview = preview_export(project, fmt="imagefolder", split=0.5, twins_together=False)
        report = export(project, "imagefolder", tmp_path / "tree", split=0.5, seed=0, twins_together=False)
    assert any("may fall on both sides" in note for note in preview.notes)
    apart = sum(len(s) > 1 for s in _sides(tmp_path / "tree").values())
    assert report.leaks == apart >= 5  # about half of 20 twin pairs land apart, each counted
    assert any("both sides of the train/val split" in note for note in report.notes)
    assert "near-duplicate" in report.summary()


def test_the_command_line_keeps_twins_together_unless_told(tmp_path, capsys):
    from explorer.cli import main

    project, _ = _labelled(tmp_path / "blobs", twins=10)
    project.close()
    blobs = str(tmp_path / "blobs")
    assert main(["export", blobs, str(tmp_path / "kept"), "--format", "imagefolder", "--split", "0.5"]) == 0
    assert "kept on one side" in capsys.readouterr().out
    assert all(len(s) == 1 for s in _sides(tmp_path / "kept").values())
    args = ["export", blobs, str(tmp_path / "apart"), "--format", "imagefolder", "--split", "0.5"]
    assert main([*args, "--split-duplicates"]) == 0
    assert "both sides" in capsys.readouterr().out


def test_no_twins_no_warning(tmp_path):
    project, _ = _labelled(tmp_path / "blobs", twins=0)
    with project:
        report = export(project, "imagefolder", tmp_path / "tree", split=0.5, seed=0)
    assert report.leaks == 0 and not any("train/val" in note for note in report.notes)


def test_quality_scores_find_twins_and_outliers(tmp_path):
    project, truth = _labelled(tmp_path / "blobs", twins=4)
    with project:
        found = workflow.quality(project)
        paths = project.paths_by_id()
        names = [paths[int(i)] for i in found.item_ids]
    group = dict(zip(names, found.duplicate_group.tolist(), strict=True))
    unique = dict(zip(names, found.uniqueness.tolist(), strict=True))
    for name in sorted(n for n in truth if n.startswith("twin-")):
        original = name.removeprefix("twin-")
        assert group[name] == group[original] >= 0 and unique[name] < 1e-3
    assert sum(g >= 0 for g in group.values()) == 8 and len({g for g in group.values() if g >= 0}) == 4
    alone = [n for n in names if not n.startswith("twin-") and "twin-" + n not in truth]
    assert min(unique[n] for n in alone) > 0.05  # noise images have no near twin
    assert ((found.typicality >= 0) & (found.typicality <= 1)).all()


def test_quality_from_the_command_line(tmp_path, capsys):
    from explorer.cli import main

    project, _ = _labelled(tmp_path / "blobs", twins=2)
    project.close()
    out = tmp_path / "quality.csv"
    assert main(["quality", str(tmp_path / "blobs"), "--n", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert len(printed.out.strip().splitlines()) == 6 and "4 in 2 near-duplicate group(s)" in printed.err
    assert len(out.read_text().splitlines()) == 63  # header + 62 images
