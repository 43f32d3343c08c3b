from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explorer.jobs import Cancelled, CancelToken, Progress
from explorer.ssl.augment import normalise, to_batch
from explorer.ssl.backbones import make_backbone
from explorer.ssl.checkpoint import CheckpointError, load_checkpoint
from explorer.ssl.encoder import load_encoder
from explorer.ssl.methods import METHODS
from explorer.ssl.methods.simclr import SimCLR
from explorer.ssl.trainer import NonFiniteLoss, Supervision, TrainConfig, learning_rate_at, train


def config(**kw) -> TrainConfig:
    base = {"epochs": 2, "image_size": 16, "batch_size": 16, "backbone": "small-cnn", "device": "cpu"}
    return TrainConfig(**{**base, **kw})


def test_two_epochs_write_a_loadable_checkpoint_and_report_progress(tiny_images, tmp_path):
    reports: list[Progress] = []
    result = train(tiny_images, config(), tmp_path, progress=reports.append)
    assert result.epochs_done == 2 and result.stopped_by == "epochs"
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert all(np.isfinite(h["loss"]) for h in result.history)
    assert result.checkpoint == tmp_path / "checkpoint.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary file left behind
    state = load_checkpoint(result.checkpoint)
    assert state["epoch"] == 2 and state["backbone"] == "small-cnn" and state["image_size"] == 16
    assert TrainConfig(**state["config"]) == config()  # the stored config round-trips
    assert reports[-1].step == "train" and reports[-1].done == reports[-1].total == 8
    assert {"loss", "images_per_s", "epoch", "lr"} <= set(reports[-1].metrics)
    encoder = load_encoder(result.checkpoint, device="cpu")
    assert encoder.image_size == 16 and encoder.embed(tiny_images[:5]).shape == (5, encoder.feature_dim)


def test_resume_continues_to_more_epochs(tiny_images, tmp_path):
    train(tiny_images, config(epochs=1), tmp_path)
    first = load_checkpoint(tmp_path / "checkpoint.pt")
    result = train(tiny_images, config(epochs=3), tmp_path, resume=True)
    assert result.epochs_done == 3 and [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.history[0] == first["history"][0]
    assert load_checkpoint(result.checkpoint)["epoch"] == 3


def test_resume_refuses_missing_or_different_checkpoints(tiny_images, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(tiny_images, config(), tmp_path, resume=True)
    train(tiny_images, config(epochs=1), tmp_path)
    with pytest.raises(CheckpointError, match="byol"):
        train(tiny_images, config(method="byol"), tmp_path, resume=True)


def test_cancel_keeps_the_previous_checkpoint(tiny_images, tmp_path):
    train(tiny_images, config(epochs=1), tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    token = CancelToken()

    def cancel_in_epoch_two(report: Progress) -> None:
        if report.done >= 5:
            token.cancel()

    with pytest.raises(Cancelled):
        train(tiny_images, config(epochs=3), tmp_path, resume=True, progress=cancel_in_epoch_two, cancel=token)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert load_encoder(tmp_path / "checkpoint.pt", device="cpu").feature_dim > 0


def test_non_finite_loss_raises_and_keeps_the_last_good_checkpoint(tiny_images, tmp_path, monkeypatch):
    train(tiny_images, config(epochs=1), tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    calls = {"n": 0}
    real = SimCLR.forward_loss

    def nan_on_third_step(self, v1, v2):
        calls["n"] += 1
        loss = real(self, v1, v2)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(SimCLR, "forward_loss", nan_on_third_step)
    with pytest.raises(NonFiniteLoss, match=r"nan at step 7 \(epoch 2"):
        train(tiny_images, config(epochs=2), tmp_path, resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def _ticking_clock(monkeypatch, seconds: float) -> None:
    """The trainer's clock advances ``seconds`` at every reading."""
    clock = {"t": 0.0}

    def fake_clock() -> float:
        clock["t"] += seconds
        return clock["t"]

    monkeypatch.setattr("explorer.ssl.trainer.time.perf_counter", fake_clock)


def test_huge_learning_rate_is_caught(tiny_images, tmp_path):
    with pytest.raises(NonFiniteLoss, match="lower learning rate"):
        train(tiny_images, config(epochs=3, learning_rate=1e30), tmp_path)


def test_time_budget_stops_at_a_batch_boundary(tiny_images, tmp_path, monkeypatch):
    _ticking_clock(monkeypatch, 1.0)  # every call to the clock costs a second
    result = train(tiny_images, config(epochs=50, max_minutes=0.5), tmp_path)
    assert result.stopped_by == "time" and 0 < result.epochs_done < 50
    assert load_checkpoint(result.checkpoint)["epoch"] == result.epochs_done


def test_time_budget_shrinks_the_schedule_and_keeps_training(tiny_images, tmp_path, monkeypatch):
    _ticking_clock(monkeypatch, 0.4)
    reports: list[Progress] = []
    result = train(tiny_images, config(epochs=50, max_minutes=0.5), tmp_path, progress=reports.append)
    assert result.stopped_by == "time" and 3 <= result.epochs_done < 50
    assert len(result.history) == result.epochs_done
    assert reports[-1].total < 50 * 4  # the schedule was planned to end inside the budget
    # and from the first step the bar counts to where the budget ends, not to 50 epochs' steps
    first = next(r for r in reports if r.loss is not None)
    assert first.done < first.total < 50 * 4
    assert result.history[-1]["lr"] < 0.1 * max(h["lr"] for h in result.history)  # and it annealed


def test_without_an_epoch_count_the_time_budget_alone_ends_training(tiny_images, tmp_path, monkeypatch):
    _ticking_clock(monkeypatch, 0.4)
    reports: list[Progress] = []
    result = train(tiny_images, config(epochs=None, max_minutes=0.5), tmp_path, progress=reports.append)
    assert result.stopped_by == "time" and result.epochs_done >= 3
    assert result.history[-1]["lr"] < 0.1 * max(h["lr"] for h in result.history)  # annealed within the budget
    assert all(r.total < 1000 for r in reports if r.step == "train")  # never a bar over a million epochs
    assert "epoch 1/" not in reports[0].message  # before the first epoch's pace, no count is known


def test_small_collections_use_one_full_batch(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    result = train(images, config(image_size=8, batch_size=256, epochs=1), tmp_path)
    assert result.epochs_done == 1


def test_learning_rate_schedule():
    lrs = [learning_rate_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[9] == pytest.approx(1.0) and lrs[0] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)) and lrs[-1] < 0.01


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": -3}, "epochs"),
        ({"method": "swav"}, "unknown method 'swav'.*simclr"),
        ({"backbone": "vgg"}, "unknown backbone 'vgg'.*small-cnn"),
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"image_size": 4}, "image_size must be at least 8"),
        ({"max_minutes": 0}, "max_minutes"),
        ({"epochs": None, "max_minutes": None}, "needs an end"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
    ],
)
def test_config_validation_messages(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**change).validate()


def test_defaults_validate_and_round_trip_as_dict():
    TrainConfig().validate()
    assert (TrainConfig().epochs, TrainConfig().max_minutes) == (100, 10)  # whichever ends first
    assert TrainConfig(**asdict(TrainConfig())) == TrainConfig()


def test_bad_images_are_refused(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        train(np.zeros((4, 16, 16, 3), np.float32), config(), tmp_path)
    with pytest.raises(ValueError, match=r"\(N, 16, 16, 3\)"):
        train(np.zeros((4, 32, 32, 3), np.uint8), config(), tmp_path)


def test_same_seed_same_result(tiny_images, tmp_path):
    a = train(tiny_images, config(epochs=1), tmp_path / "a")
    b = train(tiny_images, config(epochs=1), tmp_path / "b")
    assert a.history[0]["loss"] == b.history[0]["loss"]
    sa, sb = load_checkpoint(a.checkpoint)["encoder"], load_checkpoint(b.checkpoint)["encoder"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# ---- every method through the shared trainer ------------------------------------------------
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_resumes_and_embeds(name, tiny_images, tmp_path):
    backbone = "auto" if name == "mae" else "small-cnn"  # auto picks a ViT for MAE
    tiny_images = tiny_images[:32]  # two steps an epoch
    first = train(tiny_images, config(method=name, backbone=backbone, epochs=1), tmp_path)
    assert first.epochs_done == 1 and np.isfinite(first.history[0]["loss"])
    result = train(tiny_images, config(method=name, backbone=backbone, epochs=2), tmp_path, resume=True)
    assert result.epochs_done == 2 and result.history[0] == first.history[0]
    assert np.isfinite(result.history[1]["loss"])
    encoder = load_encoder(result.checkpoint, device="cpu")
    assert encoder.name == ("vit-mini" if name == "mae" else "small-cnn")
    assert np.isfinite(encoder.embed(tiny_images[:3])).all()


def test_every_step_reports_its_loss_for_the_curve(tiny_images, tmp_path):
    reports: list[Progress] = []
    train(tiny_images, config(epochs=2), tmp_path, progress=reports.append)
    curve = [r for r in reports if r.loss is not None]
    assert [r.done for r in curve] == list(range(1, 9))  # 64 images / 16 = 4 steps, 2 epochs
    assert all(np.isfinite(r.loss) and r.metrics["images_per_s"] > 0 for r in curve)
    assert all(r.loss is None for r in reports if r not in curve)


# ---- out of memory ------------------------------------------------------------------------
def test_out_of_memory_halves_the_batch_and_says_so(tiny_images, tmp_path, monkeypatch):
    real = SimCLR.forward_loss

    def small_memory(self, v1, v2):
        if len(v1) > 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, v1, v2)

    monkeypatch.setattr(SimCLR, "forward_loss", small_memory)
    reports: list[Progress] = []
    result = train(tiny_images, config(epochs=2, batch_size=32), tmp_path, progress=reports.append)
    assert result.epochs_done == 2 and result.batch_size == 8
    assert len(result.notes) == 2 and "retrying epoch 1 with 16" in result.notes[0]
    assert any("out of cpu memory with a batch of 32" in r.message for r in reports)
    assert load_checkpoint(result.checkpoint)["batch_size"] == 8


def test_out_of_memory_at_the_smallest_batch_is_a_clear_error(tiny_images, tmp_path, monkeypatch):
    def no_memory(self, v1, v2):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(SimCLR, "forward_loss", no_memory)
    with pytest.raises(RuntimeError, match="even with a batch of 2"):
        train(tiny_images, config(batch_size=4), tmp_path)


def test_other_runtime_errors_are_not_taken_for_out_of_memory(tiny_images, tmp_path, monkeypatch):
    def broken(self, v1, v2):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(SimCLR, "forward_loss", broken)
    with pytest.raises(RuntimeError, match="shapes"):
        train(tiny_images, config(), tmp_path)


# ---- fine-tuning ----------------------------------------------------------------------------
def test_supervised_fine_tuning_learns_the_labels(tmp_path):
    rng = np.random.default_rng(5)
    classes = rng.integers(0, 2, 40)  # class 0 tinted red, class 1 blue, under grey noise
    images = rng.integers(0, 120, (40, 16, 16, 3)).astype(np.int16)
    images[classes == 0, ..., 0] += 130
    images[classes == 1, ..., 2] += 130
    images = images.astype(np.uint8)
    # two labels a class: rare in any batch, so the head learns from its own draws of labelled images
    told = np.r_[np.flatnonzero(classes == 0)[:2], np.flatnonzero(classes == 1)[:2]]
    labels = np.full(40, -1)
    labels[told] = classes[told]
    start = train(images, config(epochs=1), tmp_path / "ssl")
    initial = load_checkpoint(start.checkpoint)["encoder"]
    supervision = Supervision(labels, (labels >= 0).astype(float), classes=2, weight=2.0)
    result = train(
        images,
        config(epochs=3, learning_rate=3e-3),
        tmp_path / "tuned",
        supervision=supervision,
        initial_encoder=initial,
    )
    state = load_checkpoint(result.checkpoint)
    assert state["supervised_classes"] == 2
    backbone, _ = make_backbone("small-cnn", 16)
    backbone.load_state_dict(state["encoder"])
    backbone.eval()
    with torch.no_grad():
        logits = F.linear(
            backbone(normalise(to_batch(images))),
            state["method"]["supervised_head.weight"],
            state["method"]["supervised_head.bias"],
        )
    predicted = logits.argmax(1).numpy()
    untold = labels < 0
    assert (predicted[untold] == classes[untold]).mean() >= 0.85  # images it was never told about
    with pytest.raises(CheckpointError, match="supervised classes"):
        train(images, config(epochs=9), tmp_path / "tuned", resume=True)


def test_supervision_is_checked(tiny_images, tmp_path):
    bad = Supervision(np.full(64, -1), np.zeros(64), classes=2)
    with pytest.raises(ValueError, match="at least one labelled"):
        train(tiny_images, config(), tmp_path, supervision=bad)
    with pytest.raises(ValueError, match="shape"):
        train(tiny_images, config(), tmp_path, supervision=Supervision(np.zeros(3), np.ones(3), classes=2))
    unweighted = Supervision(np.zeros(64, np.int64), np.zeros(64), classes=2)  # labelled, but nothing to learn
    with pytest.raises(ValueError, match="weight above 0"):
        train(tiny_images, config(), tmp_path, supervision=unweighted)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        train(tiny_images, config(), tmp_path, supervision=Supervision(np.zeros(64), np.ones(64), classes=2, batch=0))


def test_simclr_trains_at_three_times_its_rate_on_a_cpu_from_scratch_only():
    """SimCLR's rate on a CPU is 3x base x batch / 256 (its small batch under linear scaling was
    too slow a rate for Adam); fine-tuning with labels, a GPU and the other methods keep the rule."""
    import torch

    from explorer.ssl.backbones import make_backbone
    from explorer.ssl.methods import make_method
    from explorer.ssl.trainer import default_learning_rate

    backbone, dim = make_backbone("small-cnn", 16)
    simclr = make_method("simclr", backbone, dim, image_size=16)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert default_learning_rate(simclr, 64, cpu) == pytest.approx(3 * simclr.base_lr * 64 / 256)
    assert default_learning_rate(simclr, 64, cpu, supervised=True) == pytest.approx(simclr.base_lr * 64 / 256)
    assert default_learning_rate(simclr, 256, gpu) == pytest.approx(simclr.base_lr)
    moco = make_method("moco", *make_backbone("small-cnn", 16), image_size=16)
    assert default_learning_rate(moco, 64, cpu) == pytest.approx(moco.base_lr * 64 / 256)


def test_a_step_that_fails_to_compile_is_taken_again_eagerly(tiny_images, tmp_path, monkeypatch):
    from explorer.ssl import compiled

    def broken(fn):
        def run(*args):
            raise RuntimeError("No working C++ compiler found\nand more")

        return run

    monkeypatch.setenv(compiled.COMPILE_VARIABLE, "1")  # compile at the check, however short the run
    monkeypatch.setattr(compiled.torch, "compile", broken)
    reports: list[Progress] = []
    result = train(tiny_images, config(epochs=7, method="simclr"), tmp_path, progress=reports.append)
    assert result.epochs_done == 7 and all(np.isfinite(h["loss"]) for h in result.history)
    assert result.notes == [
        "compiling the training step failed (RuntimeError: No working C++ compiler found); training on without it"
    ]
    assert sum(r.loss is not None for r in reports) == 7 * 4  # every step taken once, none lost


def test_short_runs_and_other_methods_are_not_compiled(tiny_images, tmp_path, monkeypatch):
    from explorer.ssl import compiled

    calls = []
    monkeypatch.setattr(compiled.torch, "compile", lambda fn: calls.append(fn) or fn)
    train(tiny_images, config(epochs=7, method="simclr"), tmp_path / "short")  # seconds left, not minutes
    monkeypatch.setenv(compiled.COMPILE_VARIABLE, "1")
    train(tiny_images, config(epochs=7, method="byol"), tmp_path / "byol")
    assert calls == []
    train(tiny_images, config(epochs=7, method="simclr"), tmp_path / "forced")
    assert len(calls) == 1


def test_the_compiled_step_computes_the_eager_loss(tiny_images, tmp_path, monkeypatch):
    """The first compiled step sees the weights and views the eager run saw: the same loss."""
    from explorer.ssl import compiled

    def losses(name: str, compile_it: str) -> tuple[list[float], list[str]]:
        monkeypatch.setenv(compiled.COMPILE_VARIABLE, compile_it)
        reports: list[Progress] = []
        result = train(tiny_images, config(epochs=6, method="simclr"), tmp_path / name, progress=reports.append)
        return [r.loss for r in reports if r.loss is not None], result.notes

    eager, _ = losses("eager", "0")
    fast, notes = losses("compiled", "1")
    if notes:  # no C++ compiler here: the fallback above is what runs
        pytest.skip(notes[0])
    first = compiled.CHECK_AT_STEP
    assert fast[:first] == eager[:first]
    assert fast[first] == pytest.approx(eager[first], rel=0.02)
