from dataclasses import asdict

import numpy as np
import pytest
import torch

from explorer.jobs import Cancelled, CancelToken, Progress
from explorer.ssl.checkpoint import CheckpointError, load_checkpoint
from explorer.ssl.encoder import load_encoder
from explorer.ssl.methods.simclr import SimCLR
from explorer.ssl.trainer import NonFiniteLoss, TrainConfig, learning_rate_at, train


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
    assert not list(tmp_path.glob(".checkpoint-*"))  # no temporary file left behind
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


def test_huge_learning_rate_is_caught(tiny_images, tmp_path):
    with pytest.raises(NonFiniteLoss, match="lower learning rate"):
        train(tiny_images, config(epochs=3, learning_rate=1e30), tmp_path)


def test_time_budget_stops_at_a_batch_boundary(tiny_images, tmp_path, monkeypatch):
    clock = {"t": 0.0}

    def fake_clock() -> float:
        clock["t"] += 1.0  # every call to the clock costs a second
        return clock["t"]

    monkeypatch.setattr("explorer.ssl.trainer.time.perf_counter", fake_clock)
    result = train(tiny_images, config(epochs=50, max_minutes=0.5), tmp_path)
    assert result.stopped_by == "time" and 0 < result.epochs_done < 50
    assert load_checkpoint(result.checkpoint)["epoch"] == result.epochs_done


def test_time_budget_shrinks_the_schedule_and_keeps_training(tiny_images, tmp_path, monkeypatch):
    clock = {"t": 0.0}

    def fake_clock() -> float:
        clock["t"] += 0.4
        return clock["t"]

    monkeypatch.setattr("explorer.ssl.trainer.time.perf_counter", fake_clock)
    reports: list[Progress] = []
    result = train(tiny_images, config(epochs=50, max_minutes=0.5), tmp_path, progress=reports.append)
    assert result.stopped_by == "time" and 3 <= result.epochs_done < 50
    assert len(result.history) == result.epochs_done
    assert reports[-1].total < 50 * 4  # the schedule was planned to end inside the budget
    assert result.history[-1]["lr"] < 0.1 * max(h["lr"] for h in result.history)  # and it annealed


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
        ({"method": "dino"}, "unknown method 'dino'.*simclr"),
        ({"backbone": "vgg"}, "unknown backbone 'vgg'.*small-cnn"),
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"image_size": 4}, "image_size must be at least 8"),
        ({"max_minutes": 0}, "max_minutes"),
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
