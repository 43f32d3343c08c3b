"""The self-supervised training loop (read top to bottom, in the spirit of DINO's main_dino.py).

``train`` takes decoded images, a ``TrainConfig`` and an output folder; every epoch it writes
``out_dir/checkpoint.pt`` atomically, so a crash, a cancel or a non-finite loss always leaves the
last complete checkpoint intact. ``resume=True`` continues from that checkpoint.

One loop serves every method: per step it asks the method for its views (``make_views``), its
loss (``forward_loss``, under bf16/fp16 autocast on CUDA and bf16 on a CPU that has it natively,
channels-last images on CUDA) and its after-step update. Each step is reported as
``Progress(loss=..., metrics={"images_per_s": ...})`` for the live loss curve; running out of
device memory halves the batch and retries the epoch.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.jobs import Cancelled, CancelToken, Progress, ProgressFn, no_progress
from explorer.ssl import collectives
from explorer.ssl.augment import augment, is_grayscale, recipe_for, to_batch
from explorer.ssl.backbones import is_known_backbone, make_backbone, resolve_backbone
from explorer.ssl.catalog import DEFAULT_METHOD, DEFAULT_TRAIN_EPOCHS, DEFAULT_TRAIN_MINUTES
from explorer.ssl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from explorer.ssl.compiled import StepCompiler
from explorer.ssl.devices import DEVICE_NAMES, free_device_memory, is_out_of_memory, pick_device, training_autocast
from explorer.ssl.methods import METHODS, SSLMethod, make_method, method_class

CHECKPOINT_NAME = "checkpoint.pt"
NO_EPOCH_CAP = 1_000_000  # epochs=None: the loop's cap, which the time budget always meets first
WARMUP_EPOCHS = 2
MIN_LR_FRACTION = 1e-3


@dataclass
class TrainConfig:
    """Settings of one training run (stored in the checkpoint and the project as a dict)."""

    method: str = DEFAULT_METHOD
    backbone: str = "auto"  # auto: resnet18 on CUDA, small-cnn elsewhere
    epochs: int | None = DEFAULT_TRAIN_EPOCHS  # None: no cap, the time budget decides
    max_minutes: float | None = DEFAULT_TRAIN_MINUTES  # wall-clock budget; the LR schedule shrinks to fit it
    device: str = "auto"
    image_size: int = 32
    batch_size: int | None = None  # None: 256 on CUDA, 64 elsewhere (more steps per CPU-minute)
    learning_rate: float | None = None  # None: default_learning_rate (base x batch / 256, x cpu_lr_scale on a CPU)
    weight_decay: float | None = None  # None: the method's default
    seed: int = 0
    processes: int = 1  # > 1: DistributedDataParallel over this many processes (batch_size is the global batch)
    max_images: int | None = None  # train on a random sample of at most this many; None: what fits in memory

    def validate(self) -> None:
        """Raise ValueError with a clear message for the first bad setting."""
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.backbone != "auto" and not is_known_backbone(self.backbone):
            make_backbone(self.backbone, 32)  # raises the ValueError listing the choices
        if self.epochs is not None and (not isinstance(self.epochs, numbers.Integral) or self.epochs < 1):
            raise ValueError(f"epochs must be a whole number of at least 1, or None (got {self.epochs!r})")
        if self.max_minutes is not None and not (self.max_minutes > 0 and math.isfinite(self.max_minutes)):
            raise ValueError(f"max_minutes must be a positive number of minutes or None (got {self.max_minutes!r})")
        if self.epochs is None and self.max_minutes is None:
            raise ValueError("training needs an end: give epochs, max_minutes or both")

        device = str(self.device).lower()
        if device not in DEVICE_NAMES and not (device.startswith("cuda:") and device[5:].isdigit()):
            raise ValueError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICE_NAMES)} (or cuda:N)")
        if not isinstance(self.image_size, numbers.Integral) or self.image_size < 8:
            raise ValueError(f"image_size must be at least 8 pixels (got {self.image_size!r})")
        if self.batch_size is not None and (not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 2):
            raise ValueError(f"batch_size must be at least 2 (contrastive methods need pairs; got {self.batch_size!r})")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a positive number or None (got {self.learning_rate!r})")
        if self.weight_decay is not None and not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight_decay must be zero or positive, or None (got {self.weight_decay!r})")
        if self.max_images is not None and (not isinstance(self.max_images, numbers.Integral) or self.max_images < 2):
            raise ValueError(f"max_images must be a whole number of at least 2, or None (got {self.max_images!r})")
        if not isinstance(self.processes, numbers.Integral) or self.processes < 1:
            raise ValueError(f"processes must be a whole number of at least 1 (got {self.processes!r})")
        if self.batch_size is not None and self.batch_size % self.processes:
            raise ValueError(
                f"batch_size {self.batch_size} does not split evenly over {self.processes} processes; "
                f"use a multiple of {self.processes}"
            )

    @property
    def epoch_cap(self) -> int:
        """The epochs to run at most (``NO_EPOCH_CAP`` when only the time budget ends the run)."""
        return NO_EPOCH_CAP if self.epochs is None else int(self.epochs)


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


@dataclass
class TrainResult:
    checkpoint: Path
    epochs_done: int
    history: list[dict] = field(default_factory=list)  # one dict per completed epoch
    stopped_by: str = "epochs"  # 'epochs' | 'time'
    batch_size: int = 0  # the batch size it ended with (smaller than asked after running out of memory)
    notes: list[str] = field(default_factory=list)  # things the user should know (e.g. a halved batch)
    precision: str = "float32"  # what the steps ran in: 'float32', 'bf16' or 'float16' (autocast)


@dataclass
class Supervision:
    """Human (and confident pseudo) labels for fine-tuning: a supervised head joins the SSL loss.

    ``labels`` (N,) int64 class index per image, -1 where unlabelled; ``weights`` (N,) float in
    [0, 1] (1 for human labels, the confidence for pseudo-labels); ``weight`` scales the
    cross-entropy term against the self-supervised loss.
    """

    labels: np.ndarray
    weights: np.ndarray
    classes: int
    weight: float = 1.0
    batch: int = 32
    """Labelled images a step, drawn from the labelled ones alone (with replacement): drawn from the
    self-supervised batch instead, 240 labels among 5,000 images made 3 a step."""

    def validate(self, n: int) -> None:
        labels, weights = np.asarray(self.labels), np.asarray(self.weights)
        if labels.shape != (n,) or weights.shape != (n,):
            raise ValueError(
                f"supervision needs labels and weights of shape ({n},), got {labels.shape}, {weights.shape}"
            )
        if self.classes < 2 or labels.max(initial=-1) >= self.classes or labels.min(initial=0) < -1:
            raise ValueError(f"supervision labels must lie in -1..{self.classes - 1} with at least 2 classes")
        if not np.all(np.isfinite(weights)) or weights.min(initial=0) < 0:
            raise ValueError("supervision weights must be finite and not negative")
        if not ((labels >= 0) & (weights > 0)).any():
            raise ValueError("fine-tuning needs at least one labelled image with a weight above 0")
        if self.batch < 1:
            raise ValueError(f"supervision batch must be at least 1, got {self.batch}")


def default_batch_size(device: torch.device) -> int:
    """256 images on CUDA; 64 elsewhere, where the step count in a few CPU minutes is what limits
    learning (on the demo digits, 150 CPU-s of SimCLR: kNN 0.983 at 64 vs 0.976 at 256)."""
    return 256 if device.type == "cuda" else 64


def learning_rate_at(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    """Linear warmup to ``peak`` over ``warmup_steps``, then cosine decay to peak * 1e-3."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    floor = peak * MIN_LR_FRACTION
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))


def default_learning_rate(method: SSLMethod, batch: int, device: torch.device, supervised: bool = False) -> float:
    """The method's rate for ``batch`` images: ``base_lr`` x batch / 256, times the method's
    ``cpu_lr_scale`` when it trains from scratch on a CPU (its small batch; not when fine-tuning
    with labels, ``refine``, whose rate was measured as it is)."""
    scale = method.cpu_lr_scale if device.type == "cpu" and not supervised else 1.0
    return method.base_lr * batch / 256 * scale


def make_optimizer(method: SSLMethod, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The method's optimiser; no weight decay on biases and BatchNorm parameters."""
    params = method.trainable_parameters()
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if method.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)


def train(
    images: np.ndarray,
    config: TrainConfig,
    out_dir: Path,
    resume: bool = False,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    supervision: Supervision | None = None,
    initial_encoder: dict[str, torch.Tensor] | None = None,
    clock: Callable[[], float] | None = None,
    on_epoch: Callable[[nn.Module], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``config.method`` on ``images`` ((N, S, S, 3) uint8, S = config.image_size).

    Writes ``out_dir/checkpoint.pt`` after every epoch (and when the time budget stops it
    mid-epoch). Reports one ``Progress`` per optimiser step with ``loss`` set (the loss curve)
    and one per epoch. Out of device memory, it retries the epoch with half the batch and says so
    in a report and in ``TrainResult.notes``. ``supervision`` adds a supervised head on the
    labelled images (fine-tuning); ``initial_encoder`` is a backbone state dict to start from.
    ``clock`` (seconds; default ``time.perf_counter``) measures the budget and throughput; the
    benchmarks pass CPU time so that a shared machine does not change what a run gets to do.
    ``on_epoch(encoder)`` is called after every completed epoch with the backbone in eval mode
    (e.g. kNN accuracy against known labels); the metrics it returns join that epoch's history
    entry and its progress report.
    In a team (``explorer.ssl.distributed.train`` starts one for ``config.processes`` > 1 or under
    torchrun) it trains with DistributedDataParallel: rank 0 reports progress, calls ``on_epoch``
    and writes the checkpoint; the others only train. ``batch_size`` is then the global batch and
    each step equals a single-process step on the same data and seed.
    Raises Cancelled (via ``cancel``), NonFiniteLoss, ValueError for bad input, and
    CheckpointError when ``resume`` finds no usable checkpoint.
    """
    # ---- inputs and setup ---------------------------------------------------------------
    config.validate()
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (config.image_size, config.image_size, 3) or images.dtype != np.uint8:
        raise ValueError(
            f"train expects images as (N, {config.image_size}, {config.image_size}, 3) uint8, "
            f"got {images.shape} {images.dtype}"
        )
    n = len(images)
    if n < 2:
        raise ValueError(f"need at least 2 images to train, got {n}")
    if supervision is not None:
        supervision.validate(n)
    team = collectives.current()
    if team is None and (config.processes > 1 or collectives.launched_by_torchrun()):
        if supervision is not None:
            raise ValueError("fine-tuning with labels runs in one process; leave out --nproc")
        raise ValueError(
            f"{config.processes} processes: start them with explorer.ssl.distributed.train (this trains in a team)"
        )
    lead = team is None or team.is_lead
    if not lead:  # progress and per-epoch evaluation are rank 0's
        progress, on_epoch = no_progress, None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CHECKPOINT_NAME
    device = pick_device(config.device) if team is None else team.device
    backbone_name = resolve_backbone(config.backbone, device, method_class(config.method).preferred_backbone)
    cuda = device.type == "cuda"

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        backbone, feature_dim = make_backbone(backbone_name, config.image_size)
        if initial_encoder is not None:
            _load_backbone(backbone, initial_encoder, backbone_name)
        method = make_method(config.method, backbone, feature_dim, image_size=config.image_size, dataset_size=n)
        if supervision is not None:
            method.supervised_head = nn.Linear(feature_dim, supervision.classes)
    if team is not None:
        method = collectives.synchronise_batch_norm(method, team)
    method.to(device)
    if cuda:
        method.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(config.seed)
    grayscale = is_grayscale(images)
    recipe = method.recipe(config.image_size, grayscale)

    batch = min(config.batch_size or default_batch_size(device), n)
    if team is not None:  # the global batch, split evenly: each rank gets batch // size images
        batch -= batch % team.size
        if batch < team.size:
            raise ValueError(f"need at least {team.size} images to train on {team.size} processes, got {n}")
    weight_decay = method.weight_decay if config.weight_decay is None else config.weight_decay
    peak_lr = config.learning_rate or default_learning_rate(method, batch, device, supervised=supervision is not None)
    optimizer = make_optimizer(method, peak_lr, weight_decay)
    amp_dtype = training_autocast(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    start_epoch, history = 0, []
    if resume:
        start_epoch, history = _restore(path, config, backbone_name, method, optimizer, scaler, generator, device)
    model: nn.Module = method
    if team is not None:  # after restoring: every rank starts from the same state
        from torch.nn.parallel import DistributedDataParallel

        # Buffers stay equal without broadcasts: BN uses global statistics, MoCo's queue global keys.
        model = DistributedDataParallel(method, device_ids=[device.index] if cuda else None, forward_sync_buffers=False)

    data = to_batch(images).contiguous()
    if cuda and data.numel() < 2**31:
        data = data.to(device)
    elif cuda:
        data = data.pin_memory()
    if supervision is not None:
        sup_labels = torch.as_tensor(np.asarray(supervision.labels), dtype=torch.long).to(device)
        sup_weights = torch.as_tensor(np.asarray(supervision.weights), dtype=torch.float32).to(device)
        sup_recipe = recipe_for(config.image_size, grayscale)
        labelled = torch.from_numpy(
            np.flatnonzero((np.asarray(supervision.labels) >= 0) & (np.asarray(supervision.weights) > 0))
        )

    def checkpoint_state(epochs_done: int) -> dict:
        return {
            "method": method.state_dict(),
            "encoder": method.encoder.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": generator.get_state(),
            "epoch": epochs_done,
            "config": asdict(config),
            "history": history,
            "backbone": backbone_name,
            "feature_dim": feature_dim,
            "image_size": config.image_size,
            "method_name": config.method,
            "batch_size": batch,
            "supervised_classes": supervision.classes if supervision is not None else 0,
            "grayscale": grayscale,  # which recipe it learned under: the views it is embedded with
        }

    def supervised_loss() -> torch.Tensor:
        """Confidence-weighted cross entropy of the head on fresh views of ``supervision.batch``
        labelled images drawn at random."""
        rows = labelled[torch.randint(len(labelled), (supervision.batch,), generator=generator)]
        x = data[rows.to(data.device)].to(device, non_blocking=True)
        labels, weights = sup_labels[rows.to(device)], sup_weights[rows.to(device)]
        logits = method.supervised_head(method.encoder(augment(x, sup_recipe, generator))).float()
        per_image = F.cross_entropy(logits, labels, reduction="none")
        return (per_image * weights).sum() / weights.sum()

    def forward_backward(loss_of, views, step: int, epoch: int, lr: float) -> float:
        """One step's gradients and loss value (``loss_of``: the method's loss, eager or compiled)."""
        autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        with autocast:
            loss = loss_of(*views) if team is None else model(*views)
            if supervision is not None:
                loss = loss + supervision.weight * supervised_loss()
        value = float(loss.detach()) if team is None else team.mean(loss)  # the global batch's loss
        if not math.isfinite(value):
            raise NonFiniteLoss(
                f"loss became {value} at step {step + 1} (epoch {epoch + 1}, lr {lr:.3g}); "
                f"the last good checkpoint was kept ({path if path.exists() else 'none yet'}); "
                "try a lower learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        return value

    compiler = StepCompiler(method.forward_loss, config.method, device, team is not None)

    # ---- the loop -----------------------------------------------------------------------
    clock = clock or time.perf_counter
    budget_s = config.max_minutes * 60 if config.max_minutes else None
    steps_per_epoch = n // batch  # drop the last incomplete batch
    planned_epochs = config.epoch_cap  # with a time budget, re-planned after every epoch
    started = clock()
    stopped_by = "epochs"
    notes: list[str] = []
    epoch = start_epoch
    steps_run = 0  # optimiser steps taken by this call (not counting a resumed run's earlier ones)
    method.train()
    while epoch < planned_epochs:
        epoch_start = clock()
        order = torch.randperm(n, generator=generator)
        total_steps = planned_epochs * steps_per_epoch
        warmup_steps = max(1, min(WARMUP_EPOCHS * steps_per_epoch, config.epoch_cap * steps_per_epoch // 10))
        losses: list[float] = []
        out_of_time = False
        try:
            for i in range(steps_per_epoch):
                if team is None:
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    if budget_s is not None and clock() - started > budget_s:
                        out_of_time = True
                        break
                else:  # rank 0 decides for everyone, so that no rank waits in a collective alone
                    stop = collectives.GO
                    if cancel is not None and cancel.cancelled:
                        stop = collectives.CANCEL
                    elif budget_s is not None and clock() - started > budget_s:
                        stop = collectives.OUT_OF_TIME
                    stop = team.from_lead(stop)
                    if stop == collectives.CANCEL:
                        raise Cancelled()
                    if stop == collectives.OUT_OF_TIME:
                        out_of_time = True
                        break
                tick = clock()
                step = epoch * steps_per_epoch + i
                lr = learning_rate_at(step, total_steps, warmup_steps, peak_lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr

                rows = order[i * batch : (i + 1) * batch]
                x = data[rows.to(data.device)].to(device, non_blocking=True)
                views = method.make_views(x, recipe, generator)
                if team is not None:  # the global batch's views as one process draws them; keep this rank's share
                    share = batch // team.size
                    views = method.local_views(views, team.rank * share, (team.rank + 1) * share, batch)
                if cuda:
                    views = tuple(_channels_last(v) for v in views)
                if compiler.due(steps_run):  # once, when the first steps have shown the pace
                    elapsed = clock() - started
                    left = (total_steps - step) * elapsed / steps_run
                    if compiler.consider(left if budget_s is None else min(left, budget_s - elapsed)):
                        total = _steps_in_budget(step, total_steps, steps_run, elapsed, budget_s)
                        progress(Progress("train", step, total, "compiling the training step (half a minute or so)"))
                if compiler.trying:
                    try:
                        value = forward_backward(compiler.loss, views, step, epoch, lr)
                        compiler.worked()
                    except (NonFiniteLoss, Cancelled):
                        raise
                    except Exception as exc:  # no C++ compiler, an operator Inductor cannot lower: eager
                        if is_out_of_memory(exc):
                            raise
                        notes.append(compiler.failed(exc))
                        total = _steps_in_budget(step, total_steps, steps_run, clock() - started, budget_s)
                        progress(Progress("train", step, total, notes[-1]))
                        value = forward_backward(compiler.loss, views, step, epoch, lr)
                else:
                    value = forward_backward(compiler.loss, views, step, epoch, lr)
                scaler.step(optimizer)
                scaler.update()
                method.after_step((step + 1) / total_steps)
                losses.append(value)
                steps_run += 1
                now = clock()
                rate = len(x) / max(now - tick, 1e-9)
                progress(
                    Progress(
                        "train",
                        done=step + 1,
                        total=_steps_in_budget(step + 1, total_steps, steps_run, now - started, budget_s),
                        message=_epoch_text(epoch + 1, planned_epochs),
                        metrics={"loss": value, "images_per_s": rate, "epoch": float(epoch + 1), "lr": lr},
                        loss=value,
                    )
                )
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            if team is not None:  # halving needs every rank to agree mid-step; say what to do instead
                raise RuntimeError(
                    f"out of {device.type} memory on process {team.rank} with {batch // team.size} images per "
                    "process; use a smaller --batch-size or --image-size"
                ) from None
            views = x = None  # drop the references so the memory can be freed
            optimizer.zero_grad(set_to_none=True)
            free_device_memory(device)
            if batch <= 2:
                raise RuntimeError(
                    f"out of {device.type} memory even with a batch of {batch} images at {config.image_size} px; "
                    "use a smaller --image-size, a smaller --backbone, or --device cpu"
                ) from None
            note = f"out of {device.type} memory with a batch of {batch}: retrying epoch {epoch + 1} with {batch // 2}"
            batch //= 2
            steps_per_epoch = n // batch
            notes.append(note)
            progress(
                Progress(
                    "train",
                    done=epoch * steps_per_epoch,
                    total=_steps_in_budget(
                        epoch * steps_per_epoch,
                        planned_epochs * steps_per_epoch,
                        steps_run,
                        clock() - started,
                        budget_s,
                    ),
                    message=note,
                )
            )
            continue
        if out_of_time:  # mid-epoch: keep the weights, count only completed epochs
            stopped_by = "time"
            if lead:
                save_checkpoint(checkpoint_state(epoch), path)
            if team is not None:
                team.barrier()
            break

        seconds = clock() - epoch_start
        epoch += 1
        history.append(
            {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                "lr": lr,
                "seconds": seconds,
                "images_per_s": steps_per_epoch * batch / max(seconds, 1e-9),
            }
        )
        extra: dict[str, float] = {}
        if on_epoch is not None:
            method.eval()
            extra = {key: float(value) for key, value in on_epoch(method.encoder).items()}
            method.train()
            history[-1].update(extra)
        if lead:
            save_checkpoint(checkpoint_state(epoch), path)
        if team is not None:
            team.barrier()
        if budget_s is not None:  # re-plan the schedule to end inside the budget (last epoch's pace)
            elapsed = clock() - started
            fits = epoch + int((budget_s - elapsed) // max(seconds, 1e-9))
            planned_epochs = max(epoch, min(config.epoch_cap, fits))
            if team is not None:
                planned_epochs = team.from_lead(planned_epochs)
        progress(
            Progress(
                "train",
                done=epoch * steps_per_epoch,
                total=planned_epochs * steps_per_epoch,
                message=f"{_epoch_text(epoch, planned_epochs)} done",
                metrics={
                    "loss": history[-1]["loss"],
                    "images_per_s": history[-1]["images_per_s"],
                    "epoch": float(epoch),
                    "lr": lr,
                    **extra,
                },
            )
        )

    if epoch < config.epoch_cap:
        stopped_by = "time"
    if lead and epoch == start_epoch and not path.exists():
        save_checkpoint(checkpoint_state(epoch), path)
    if team is not None:
        team.barrier()
    precision = {None: "float32", torch.bfloat16: "bf16", torch.float16: "float16"}[amp_dtype]
    return TrainResult(path, epoch, history, stopped_by, batch, notes, precision)


def _epoch_text(epoch: int, planned: int) -> str:
    """ "epoch 3/40", or "epoch 3" while the time budget has not yet said how many fit."""
    return f"epoch {epoch}" if planned >= NO_EPOCH_CAP else f"epoch {epoch}/{planned}"


def _steps_in_budget(done: int, planned: int, steps_run: int, elapsed: float, budget_s: float | None) -> int:
    """The step count to show as the total: ``planned`` steps, or fewer where the time budget ends
    first at this run's pace so far (``steps_run`` steps in ``elapsed`` seconds). The schedule
    is re-planned to the budget only after the first epoch; until then a bar over the planned
    epochs said "ETA 1:00:57" to someone who had asked for two minutes."""
    if budget_s is None or steps_run <= 0 or elapsed <= 0:
        return planned
    fits = done + int(max(budget_s - elapsed, 0.0) * steps_run / elapsed)
    return max(done, min(planned, fits))


def _channels_last(view: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) float in NHWC memory order (faster convolutions on CUDA); labels as they are."""
    if view.ndim == 4 and view.is_floating_point():
        return view.contiguous(memory_format=torch.channels_last)
    return view


def _load_backbone(backbone: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Start ``backbone`` from ``state``; CheckpointError when the weights are for another architecture."""
    try:
        backbone.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"the starting encoder's weights do not fit backbone {name!r}: {exc}") from None


def _restore(
    path: Path,
    config: TrainConfig,
    backbone_name: str,
    method: SSLMethod,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[int, list[dict]]:
    """Load the checkpoint at ``path`` into the given objects; (epochs done, history)."""
    if not path.exists():
        raise CheckpointError(f"cannot resume: no checkpoint at {path}")
    state = load_checkpoint(path, map_location=device)
    saved_method = state.get("method_name", state["config"].get("method"))
    if saved_method != config.method:
        raise CheckpointError(
            f"cannot resume {path}: it was trained with method {saved_method!r}, not {config.method!r}"
        )
    if state["backbone"] != backbone_name:
        raise CheckpointError(f"cannot resume {path}: its backbone is {state['backbone']!r}, not {backbone_name!r}")
    if state["image_size"] != config.image_size:
        raise CheckpointError(
            f"cannot resume {path}: it was trained at {state['image_size']} px, not {config.image_size}"
        )
    classes = getattr(getattr(method, "supervised_head", None), "out_features", 0)
    if int(state.get("supervised_classes", 0)) != classes:
        raise CheckpointError(
            f"cannot resume {path}: it was trained with {state.get('supervised_classes', 0)} supervised classes "
            f"(0 = self-supervised only), this run has {classes}"
        )
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    generator.set_state(state["rng"].cpu())
    return int(state["epoch"]), list(state.get("history", []))
