"""The encoder engine through the workflow and the CLI: train, embed with loaded encoders,
evaluate against baselines, fine-tune with labels; images of every mode reach the model."""

import csv

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from explorer import workflow
from explorer.cli import main
from explorer.images.decode import load_rgb_array
from explorer.ssl.encoder import untrained_encoder
from explorer.ssl.trainer import TrainConfig
from explorer.store import Project
from explorer.workflow import training

SHAPES = ("bar", "cross", "ring")


def draw(shape: str, rng: np.random.Generator, size: int = 24) -> np.ndarray:
    """(size, size, 3) uint8: a shape in a random colour on a random background."""
    image = np.empty((size, size, 3), np.uint8)
    image[:] = rng.integers(0, 120, 3)
    ink = rng.integers(140, 256, 3)
    y, x = np.mgrid[:size, :size] - size / 2 + rng.normal(0, 1.5, 2)[:, None, None]
    if shape == "bar":
        mask = np.abs(x) < 3
    elif shape == "cross":
        mask = (np.abs(x) < 2) | (np.abs(y) < 2)
    else:
        mask = np.abs(np.hypot(x, y) - 7) < 2
    image[mask] = ink
    return image


@pytest.fixture
def shapes_project(tmp_path):
    """A scanned project of 48 shape images and its truth CSV (outside the collection)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "shapes"
    folder.mkdir()
    rows = []
    for k in range(48):
        shape = SHAPES[k % 3]
        Image.fromarray(draw(shape, rng)).save(folder / f"img-{k:02d}.png")
        rows.append((f"img-{k:02d}.png", shape))
    truth = tmp_path / "truth.csv"
    with open(truth, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    with Project(folder) as project:
        workflow.scan(project)
    return folder, truth


def small_config(**kw) -> TrainConfig:
    return TrainConfig(
        **{"epochs": 1, "image_size": 16, "batch_size": 16, "backbone": "small-cnn", "device": "cpu", **kw}
    )


def test_evaluate_puts_the_current_embeddings_next_to_both_baselines(shapes_project):
    folder, truth = shapes_project
    with Project(folder) as project:
        with pytest.raises(workflow.WorkflowError, match="no embeddings yet"):
            workflow.evaluate(project, truth)
        workflow.train(project, small_config())
        workflow.embed(project, device="cpu")
        report = workflow.evaluate(project, truth, k=5)
        assert report.images == 48 and report.classes == 3 and report.k == 5
        names = [r.name for r in report.rows]
        assert names[0].startswith("current (train run") and names[1:] == ["raw pixels 32x32", "untrained small-cnn"]
        assert all(0 <= r.knn <= 1 and 0 <= r.linear <= 1 for r in report.rows)
        assert report.rows[2].dim == 256 and report.rows[1].dim == 32 * 32 * 3
        text = report.summary()
        assert "kNN acc" in text and "linear" in text and "<- best kNN" in text and "48 labelled images" in text
        recorded = project.latest_run("evaluate")
        assert recorded.status == "done" and "raw pixels 32x32 knn" in recorded.metrics


def test_evaluate_refuses_a_truth_file_that_matches_nothing(shapes_project, tmp_path):
    folder, _ = shapes_project
    other = tmp_path / "other.csv"
    other.write_text("path,label\nelsewhere/a.png,cat\nelsewhere/b.png,dog\n")
    with Project(folder) as project:
        workflow.embed(project, encoder="pixels")
        with pytest.raises(workflow.WorkflowError, match="only 0 of its 2 labelled paths"):
            workflow.evaluate(project, other)


def test_cli_evaluate_prints_the_table(shapes_project, capsys):
    folder, truth = shapes_project
    assert main(["embed", str(folder), "--encoder", "pixels"]) == 0
    assert main(["evaluate", str(folder), "--labels", str(truth), "--k", "5"]) == 0
    out = capsys.readouterr().out
    assert "current (pixels)" in out and "untrained small-cnn" in out and "raw pixels 32x32" in out


def test_cli_trains_any_method_by_name_and_embeds_a_torchvision_file(shapes_project, tmp_path, capsys):
    folder, _ = shapes_project
    args = ["--epochs", "1", "--image-size", "16", "--batch-size", "16", "--device", "cpu"]
    assert main(["train", str(folder), "--method", "dino", "--backbone", "small-cnn", *args]) == 0
    assert "training run" in capsys.readouterr().out
    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    spec = f"torchvision:resnet18={weights}"
    assert main(["embed", str(folder), "--encoder", spec, "--image-size", "32", "--device", "cpu"]) == 0
    with Project(folder) as project:
        run = project.latest_run("embed")
        assert run.params.items() >= {"encoder": spec, "backbone": "torchvision:resnet18", "image_size": 32}.items()
        assert project.load_run_array(run.id, "embeddings").shape == (48, 512)
    assert main(["embed", str(folder), "--encoder", f"torchvision:resnet18={tmp_path / 'gone.pth'}"]) == 1
    assert "gone.pth" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse lists the choices
        main(["train", str(folder), "--method", "swav"])
    assert "choose from 'simclr', 'moco'" in capsys.readouterr().err


def test_finetune_uses_human_and_confident_pseudo_labels(shapes_project):
    folder, _ = shapes_project
    with Project(folder) as project:
        workflow.train(project, small_config())
        items = project.items()
        classes = {name: project.add_class(name).id for name in SHAPES}
        for item in items[:12]:
            project.set_labels([item.id], classes[SHAPES[int(item.path[4:6]) % 3]])
        pseudo_items = np.array([item.id for item in items[12:20]])
        confidence = np.array([0.95] * 4 + [0.5] * 4)
        project.save_pseudo_labels(pseudo_items, np.full(8, classes["bar"]), confidence)
        run = workflow.finetune(project, config=small_config(epochs=2), min_confidence=0.9)
        metrics = project.run(run).metrics
        assert metrics["human_labels"] == 12 and metrics["pseudo_labels"] == 4 and metrics["epochs_done"] == 2
        assert metrics["finetuned_from"].startswith("train run")
        embed_run = workflow.embed(project, device="cpu")  # the fine-tuned encoder is now the latest
        assert project.run(embed_run).params["encoder"] == f"train run {run}"
        with pytest.raises(workflow.WorkflowError, match="raw pixels cannot be fine-tuned"):
            workflow.finetune(project, encoder="pixels", config=small_config())


def test_finetune_needs_labels(shapes_project):
    folder, _ = shapes_project
    with Project(folder) as project:
        workflow.train(project, small_config())
        with pytest.raises(workflow.WorkflowError, match="human labels in at least 2 classes"):
            workflow.finetune(project, config=small_config())


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "1"])
def test_every_image_mode_reaches_the_model_as_rgb(mode, tmp_path):
    """Grayscale, alpha, palette, 16-bit and 1-bit files decode to (S, S, 3) uint8 that look like the
    8-bit RGB original, and embed like it."""
    rng = np.random.default_rng(1)
    grey = np.kron(rng.integers(0, 2, (4, 4)) * 255, np.ones((8, 8))).astype(np.uint8)  # 32x32 black/white blocks
    original = np.repeat(grey[..., None], 3, axis=-1)
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)  # full 16-bit range
    elif mode in ("LA", "RGBA"):
        image = Image.fromarray(original).convert(mode)  # opaque alpha
    else:
        image = Image.fromarray(grey).convert(mode)
    path = tmp_path / f"image-{mode.replace(';', '')}.png"
    image.save(path)
    decoded = load_rgb_array(path, 32)
    assert decoded.shape == (32, 32, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - original).max() <= 1
    encoder = untrained_encoder("small-cnn", 32, device="cpu")
    assert np.allclose(encoder.embed(decoded[None]), encoder.embed(original[None]), atol=1e-3)


def test_training_reports_knn_accuracy_on_true_labels_every_epoch(shapes_project):
    from explorer.ssl.evaluate import knn_accuracy

    folder, truth = shapes_project
    reports = []
    with Project(folder) as project:
        run = workflow.train(project, small_config(epochs=2), progress=reports.append, eval_labels=truth)
        per_epoch = [r.metrics["knn_accuracy"] for r in reports if "knn_accuracy" in r.metrics]
        assert len(per_epoch) == 2 and all(0 <= a <= 1 for a in per_epoch)
        assert project.run(run).metrics["knn_accuracy"] == per_epoch[-1]
        # the figure is the trained encoder's: embedding the collection with it (one plain view
        # each, as the trainer checks it; the map's embed run uses views) gives the same accuracy
        model, _ = workflow.resolve_encoder(project, str(run), "cpu")
        ids, images = workflow.load_images(project, model.image_size)
        paths = project.paths_by_id()
        labels = np.array([SHAPES[int(paths[int(i)][4:6]) % 3] for i in ids], dtype=object)
        k = min(20, len(labels) // (2 * len(set(labels))))  # small classes: at most half a class votes
        assert k < 20 and knn_accuracy(model.embed(images), labels, k) == pytest.approx(per_epoch[-1])


def test_training_reports_knn_accuracy_on_the_peoples_labels_when_there_are_enough(shapes_project, tmp_path):
    folder, _ = shapes_project
    with Project(folder) as project:
        classes = {name: project.add_class(name).id for name in SHAPES}
        items = project.items()
        for item in items[:5]:
            project.set_labels([item.id], classes[SHAPES[int(item.path[4:6]) % 3]])
        few = workflow.train(project, small_config())
        assert "knn_accuracy" not in project.run(few).metrics  # 5 labels: too few to say anything
        for item in items[5:30]:
            project.set_labels([item.id], classes[SHAPES[int(item.path[4:6]) % 3]])
        enough = workflow.train(project, small_config())
        assert 0 <= project.run(enough).metrics["knn_accuracy"] <= 1
        elsewhere = tmp_path / "elsewhere.csv"
        elsewhere.write_text("path,label\nother/a.png,cat\nother/b.png,dog\n")
        with pytest.raises(workflow.WorkflowError, match="elsewhere.csv: only 0 image"):
            workflow.train(project, small_config(), eval_labels=elsewhere)


def test_a_collection_too_big_for_memory_trains_on_a_seeded_sample(shapes_project, monkeypatch, capsys):
    folder, _ = shapes_project
    with Project(folder) as project:
        ids = project.item_ids()
        sample, readable = workflow.training_sample(project, small_config(max_images=20))
        assert readable == 48 and len(sample) == 20 and set(sample.tolist()) <= set(ids.tolist())
        again, _ = workflow.training_sample(project, small_config(max_images=20))
        other, _ = workflow.training_sample(project, small_config(max_images=20, seed=1))
        assert np.array_equal(sample, again) and not np.array_equal(sample, other)
        kept, _ = workflow.training_sample(project, small_config(max_images=20), keep=ids[-5:])
        assert len(kept) == 20 and set(ids[-5:].tolist()) <= set(kept.tolist())
        assert workflow.training_sample(project, small_config(max_images=48)) == (None, 48)
        # by default the cap is what fits in memory: 100 KB available holds 33 images of 16 px
        monkeypatch.setattr(training, "MIN_TRAIN_SAMPLE", 2)
        monkeypatch.setattr("explorer.neighbours.knn.available_memory", lambda: 100_000)
        auto, _ = workflow.training_sample(project, small_config())
        assert len(auto) == int(workflow.TRAIN_MEMORY_SHARE * 100_000) // (3 * 16 * 16)
        monkeypatch.undo()
        run = workflow.train(project, small_config(max_images=20))
        assert project.run(run).metrics["images"] == 20 and project.run(run).metrics["sampled_from"] == 48
    args = ["train", str(folder), "--max-images", "30", "--epochs", "1", "--image-size", "16", "--device", "cpu"]
    assert main([*args, "--backbone", "small-cnn"]) == 0
    with Project(folder) as project:
        assert project.runs("train")[-1].metrics["images"] == 30
    assert main(["train", str(folder), "--max-images", "1"]) != 0
    assert "max_images must be a whole number of at least 2" in capsys.readouterr().err


def test_a_colour_collection_is_embedded_as_views_of_its_training_recipe(shapes_project):
    """A trained encoder's checkpoint says it learned on colour images; the embed run then uses
    views (and says how many), its vectors differ from the plain image's, and pretrained or
    untrained encoders keep one view."""
    from explorer.ssl.checkpoint import load_checkpoint
    from explorer.ssl.encoder import VIEWS

    folder, _ = shapes_project
    with Project(folder) as project:
        train_run = workflow.train(project, small_config())
        assert load_checkpoint(project.run_dir(train_run) / "checkpoint.pt", map_location="cpu")["grayscale"] is False
        run = workflow.embed(project)
        params = project.run(run).params
        assert (
            params["views"] == VIEWS
            and params["grayscale"] is False
            and params["encoder_key"].endswith(f"views={VIEWS}")
        )
        model, _ = workflow.resolve_encoder(project, str(train_run), "cpu")
        _, images = workflow.load_images(project, model.image_size)
        stored = project.load_run_array(run, "embeddings")
        assert np.abs(model.embed(images) - stored).max() > 1e-3  # one plain view each: another space
        model.use_views(VIEWS, grayscale=False)
        np.testing.assert_allclose(model.embed(images), stored, atol=1e-4)
    assert untrained_encoder("small-cnn", 16).grayscale is None  # workflow.apply_views leaves it at one view


def test_cli_embed_views_sets_how_many_and_refuses_encoders_without_a_recipe(shapes_project, capsys):
    folder, _ = shapes_project
    with Project(folder) as project:
        workflow.train(project, small_config())
    assert main(["embed", str(folder), "--views", "2"]) == 0
    capsys.readouterr()
    with Project(folder) as project:
        assert project.latest_run("embed").params["views"] == 2
    assert main(["embed", str(folder), "--encoder", "pixels", "--views", "2"]) == 1
    assert "--views needs an encoder trained here" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main(["embed", str(folder), "--views", "0"])
    assert stopped.value.code == 2 and "--views: must be at least 1" in capsys.readouterr().err
