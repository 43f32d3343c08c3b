"""Refine with labels: the encoder learns what the labels mean, where its own features mislead it."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import workflow
from explorer.cli import main
from explorer.ssl.trainer import TrainConfig
from explorer.store import Project
from explorer.workflow.labelling import unseen_labels
from explorer.workflow.refine import MIN_CHECKED, held_out_rows, refine

pytestmark = pytest.mark.slow


def write_bars(folder: Path, per_class: int = 80, size: int = 16, seed: int = 0) -> dict[str, str]:
    """Horizontal vs vertical bars; the background (red or blue, at random) says nothing about the
    class but dominates the pixels, so an encoder that has not seen labels groups by colour."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for k in range(2 * per_class):
        cls = "horizontal" if k % 2 else "vertical"
        image = np.zeros((size, size, 3), np.uint8)
        image[:] = (200, 40, 40) if rng.random() < 0.5 else (40, 40, 200)
        image += rng.integers(0, 30, image.shape, dtype=np.uint8)
        a, b = rng.integers(2, size - 10), rng.integers(3, size - 4)
        if cls == "horizontal":
            image[b : b + 2, a : a + 8] = 255
        else:
            image[a : a + 8, b : b + 2] = 255
        name = f"img-{k:04d}.png"
        Image.fromarray(image).save(folder / name)
        truth[name] = cls
    return truth


def accuracy(project: Project, truth: dict[str, str]) -> float:
    table = project.label_table()
    names = {c.id: c.name for c in project.classes()}
    paths = project.paths_by_id()
    return float(np.mean([names.get(int(c)) == truth[paths[int(i)]] for i, c in zip(table.item_ids, table.class_ids)]))


@pytest.fixture(scope="module", autouse=True)
def one_view():
    """One plain view per image: the bars' nuisance (the background colour) is what embedding views
    average away (``explorer.ssl.encoder``), and with them a one-epoch encoder already separates
    the bars; without them it groups by colour, which is what refine must fix here."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("explorer.ssl.encoder.VIEWS", 1)
        yield


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    """The bars, trained for one epoch (an encoder that knows colours), embedded, mapped, with 15
    human labels a class (enough for the held-out check), propagated."""
    root = tmp_path_factory.mktemp("refine") / "bars"
    truth = write_bars(root)
    with Project(root) as project:
        workflow.scan(project)
        workflow.train(project, TrainConfig(epochs=1, image_size=16, batch_size=32, device="cpu"))
        workflow.embed(project, device="cpu")
        workflow.make_map(project)
        ids = {path: i for i, path in project.paths_by_id().items()}
        for name in ("horizontal", "vertical"):
            cls = project.add_class(name)
            project.set_labels([ids[p] for p in sorted(p for p in truth if truth[p] == name)[:15]], cls.id)
        workflow.propagate(project)
    return root, truth


def test_refine_teaches_the_encoder_what_the_labels_mean(bars, tmp_path):
    import shutil

    root, truth = bars
    shutil.copytree(root, tmp_path / "bars")
    with Project(tmp_path / "bars") as project:
        before = accuracy(project, truth)
        runs_before = len(project.runs("train"))
        report = refine(project, rounds=1, max_minutes=10, device="cpu")  # epochs bound it, not the clock
        after = accuracy(project, truth)
        assert report.held_out == 6 and report.start_accuracy is not None  # every fifth of 15 a class
        assert report.rounds[0].held_out_accuracy > report.start_accuracy
        assert after > before + 0.1 and after > 0.9, (before, after)
        # a normal training run, fine-tuned from the encoder the map came from, is now current
        run = project.runs("train")[-1]
        assert len(project.runs("train")) == runs_before + 1 and run.metrics["refine_round"] == 1
        assert run.metrics["human_labels"] == 24  # the colour map's guesses were not trusted enough
        # the labels it learned are remembered, so that the confidence is not checked on them
        taught = project.load_run_array(run.id, "trained_labels")
        assert len(taught) == 24 and not set(taught.tolist()) & set(report_checked(project, report))
        map_run = project.latest_run("map").id
        item_ids = project.load_run_array(map_run, "item_ids")
        assert (~unseen_labels(project, map_run, item_ids)).sum() == 24
        assert project.run(project.latest_run("embed").id).params["encoder"] == f"train run {run.id}"
        assert report.kept == 0 and "round 1" in report.summary()


def test_a_round_that_ties_on_the_check_is_kept_and_one_that_does_worse_undone(bars, tmp_path, monkeypatch):
    """The check is a few dozen labels: a tie cannot tell two encoders apart (kept, the loop goes on);
    a round that gets fewer of them right is undone and the best encoder made current again."""
    import shutil

    import explorer.workflow.refine as module

    said = iter([0.5, 0.5, 0.4])  # before refining, round 1 (a tie), round 2 (worse)
    monkeypatch.setattr(module, "_held_out_accuracy", lambda project, checked: next(said))
    root, _truth = bars
    shutil.copytree(root, tmp_path / "bars")
    with Project(tmp_path / "bars") as project:
        report = refine(project, rounds=3, max_minutes=0.2, device="cpu")
        first, second = (r.train_run for r in report.rounds)
        assert report.kept == 0 and report.stopped_by == "worse" and len(report.rounds) == 2
        assert project.run(project.latest_run("embed").id).params["encoder"] == f"train run {first}"
        assert first != second and "worse" in report.summary()


def report_checked(project: Project, report) -> list[int]:
    """The item ids refine set aside to check on (the same draw as its own)."""
    from explorer.workflow.labelling import human_evidence

    item_ids = project.load_run_array(project.latest_run("map").id, "item_ids")
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, _ = human_evidence(project, item_ids, class_ids)
    checked = item_ids[held_out_rows(seeds)]
    assert len(checked) == report.held_out
    return checked.tolist()


def test_only_pseudo_labels_expected_right_are_trained_on(bars, tmp_path):
    """A weak map (it groups by colour) gets few pseudo-labels past the calibrated bar; a good one
    (raw pixels of well-separated blobs) many, all right and each weighted by its expected rightness."""
    from explorer.workflow.refine import PSEUDO_MIN_RIGHT, _round_labels
    from tests.blobs import mapped_blobs

    root, truth = bars
    with Project(root) as project:
        _, weak = _round_labels(project, np.zeros(0, np.int64))
    blobs = mapped_blobs(tmp_path / "blobs", per_class=40)
    with Project(tmp_path / "blobs") as project:
        ids = {path: i for i, path in project.paths_by_id().items()}
        for name in sorted(set(blobs.values())):
            cls = project.add_class(name)
            project.set_labels([ids[p] for p in sorted(p for p in blobs if blobs[p] == name)[:8]], cls.id)
        label_of, good = _round_labels(project, np.zeros(0, np.int64))
        names = [c.name for c in project.classes()]
        paths = project.paths_by_id()
        human = set(project.human_labels())
    pseudo = {i: v for i, v in label_of.items() if i not in human}
    assert len(pseudo) == good and good > 40 and good > 2 * weak, (good, weak)
    assert all(w >= PSEUDO_MIN_RIGHT for _c, w in pseudo.values())
    assert np.mean([names[c] == blobs[paths[i]] for i, (c, _w) in pseudo.items()]) > 0.95


def test_held_out_labels_are_a_fifth_of_each_class_and_none_when_few():
    seeds = np.full(200, -1)
    seeds[:30], seeds[100:110] = 0, 1
    rows = held_out_rows(seeds)
    assert len(rows) == 6 + 2 and set(seeds[rows].tolist()) == {0, 1}
    assert len(held_out_rows(seeds)) == len(rows) and (held_out_rows(seeds) == rows).all()  # seeded
    few = np.full(200, -1)
    few[: MIN_CHECKED - 1] = 0
    assert len(held_out_rows(few)) == 0
    # 30 labels, 3 a class but one class with 6: a check of 1 label could only tie or fall
    spread = np.full(200, -1)
    spread[:27] = np.arange(27) % 9
    spread[27:30] = 0
    assert len(held_out_rows(spread)) == 0


def test_many_classes_give_one_label_each_to_make_up_what_the_calibration_needs():
    from explorer.labels.calibrate import MIN_HELD_OUT as calibration_needs

    seeds = np.full(400, -1)
    seeds[:50] = np.arange(50) % 10  # 10 classes with 5 labels: 10 set aside, the calibration needs 20
    seeds[50:110] = 10 + np.arange(60) % 15  # 15 classes with 4: one each from 10 of them makes it up
    seeds[110:130] = 25 + np.arange(20) % 10  # 10 classes with 2: never
    rows = held_out_rows(seeds)
    assert len(rows) == calibration_needs
    per_class = np.bincount(seeds[rows], minlength=35)
    assert (per_class[:10] == 1).all() and per_class[10:25].sum() == 10 and per_class[25:].sum() == 0
    assert (per_class <= 1).all()
    # where one label from each class with 4 would not make it up, they keep theirs
    seeds[50:110] = -1
    seeds[50:86] = 10 + np.arange(36) % 9  # 9 classes with 4: one short of the 10 missing
    assert len(held_out_rows(seeds)) == 10


def test_refine_explains_what_it_needs(tmp_path, capsys):
    root = tmp_path / "bars"
    write_bars(root, per_class=10)
    assert main(["scan", str(root)]) == 0
    assert main(["refine", str(root)]) == 1
    assert "no embeddings yet" in capsys.readouterr().err
    assert main(["embed", str(root), "--encoder", "pixels"]) == 0 and main(["map", str(root)]) == 0
    assert main(["refine", str(root), "--rounds", "1"]) == 1
    assert "no trained encoder yet" in capsys.readouterr().err
    assert main(["train", str(root), "--epochs", "1", "--image-size", "16", "--device", "cpu"]) == 0
    assert main(["embed", str(root), "--device", "cpu"]) == 0 and main(["map", str(root)]) == 0
    assert main(["refine", str(root)]) == 1
    assert "human labels in at least 2 classes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["refine", str(root), "--rounds", "0"])
    assert "--rounds: must be at least 1" in capsys.readouterr().err


def test_views_average_away_what_the_training_recipe_varies(bars):
    """The same one-epoch encoder, embedding each bar as the mean of 8 views of its colour recipe,
    groups the bars by direction better than from the plain image: under half the kNN mistakes."""
    from explorer.ssl.evaluate import knn_accuracy

    root, truth = bars
    with Project(root) as project:
        model, _ = workflow.resolve_encoder(project, None, "cpu")
        ids, images = workflow.load_images(project, model.image_size)
        paths = project.paths_by_id()
    labels = np.array([truth[paths[int(i)]] for i in ids], dtype=object)
    plain = knn_accuracy(model.embed(images), labels, 10)
    model.use_views(8, grayscale=False)
    viewed = knn_accuracy(model.embed(images), labels, 10)
    assert viewed > plain and 1 - viewed < 0.5 * (1 - plain), (plain, viewed)
