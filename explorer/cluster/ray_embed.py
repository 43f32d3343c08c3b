"""``explorer embed PROJECT --ray [ADDRESS]``: embedding extraction as a Ray Data pipeline.

    item paths -> decode + resize (Ray tasks on any CPU, the local path's ``load_rgb_array``)
               -> embed (an actor pool holding the encoder; each batch written as a shard)
               -> merge (the driver, in item order, into the run's ``embeddings.npy``)

The result is an ordinary ``embed`` run (same params, ``item_ids`` and float32 unit-row
``embeddings``), so ``map`` and ``propagate`` use it unchanged; it becomes current only when the
merge is complete, so an interrupted Ray run leaves the previous embeddings current.

On a cluster of several machines every worker needs this package installed and the collection
and the project's state folder at the same paths (a shared file system): workers read the images
and write the shards themselves, so no pixels or vectors pass through the driver. Ray is an
optional extra (``pip install 'embedding-explorer[ray]'``), imported only here and only when asked.
"""

from __future__ import annotations

import logging
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer import workflow
from explorer.cluster.shards import merge_shards, write_shard
from explorer.images.decode import ImageError, load_rgb_array
from explorer.jobs import Cancelled, CancelToken, Progress, ProgressFn, no_progress
from explorer.store import Project
from explorer.store.arrays import write_atomically
from explorer.workflow.encoders import apply_views

if TYPE_CHECKING:
    from explorer.ssl.encoder import Encoder

WEIGHTS_FILE = "ray-encoder.pt"  # in the run folder while the run lasts
SHARD_FOLDER = "shards"
MAX_BLOCKS = 4096  # input blocks; more only adds scheduling overhead in the driver


class RayUnavailable(workflow.WorkflowError):
    """Ray (with Ray Data) is not installed; the message says how to get it."""


@dataclass(frozen=True)
class ActorPlan:
    """How many encoder actors, what each reserves, and where it runs its model."""

    count: int
    num_gpus: float
    num_cpus: float
    device: str  # "cuda" (Ray gives each actor its own GPU as cuda:0) or "cpu"
    threads: int  # torch threads per actor (CPU actors)
    decode_in_actor: bool  # True: the actor decodes its batch itself; False: separate decode tasks

    def describe(self) -> str:
        return f"{self.count} Ray actor(s) on {'GPU' if self.device == 'cuda' else 'CPU'}"


def plan_actors(resources: dict[str, float], device: str = "auto", actors: int | None = None) -> ActorPlan:
    """The actor pool for a cluster with ``resources`` (``ray.cluster_resources()``).

    With GPUs (and ``device`` auto or cuda): one actor per GPU, each reserving the whole GPU
    (``num_gpus=1``) and one CPU: a second model on the same GPU would only contend for it. The
    images are decoded by separate Ray tasks on the other CPUs, since one CPU cannot decode as
    fast as a GPU embeds. Without GPUs: a small pool (about one actor per 4 CPUs), each running
    torch on its share of the CPUs and decoding its own batches: one intra-op-parallel model
    uses cores better than many single-threaded copies that each hold the weights, and decoding
    in the actor needs no CPU set aside (separate decode tasks would wait forever for a CPU if
    the actors held them all) and moves no pixels between processes.
    """
    key = device.strip().lower()
    if key not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--ray runs on device auto, cpu or cuda (Ray assigns each actor its GPU), got {device!r}")
    if actors is not None and actors < 1:
        raise ValueError(f"the number of Ray actors must be at least 1, got {actors}")
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if key != "cpu" and gpus > 0:
        count = actors or gpus
        if count > gpus:
            raise ValueError(f"{count} GPU actors asked for, but the Ray cluster has {gpus} GPU(s)")
        if cpus < count + 1:
            raise ValueError(
                f"the Ray cluster has {cpus} CPU(s): {count} GPU actor(s) need one each and at least one more decodes images"
            )
        return ActorPlan(count, 1, 1, "cuda", 1, decode_in_actor=False)
    if key == "cuda":
        raise ValueError("device 'cuda' asked for, but the Ray cluster has no GPU; use --device auto or cpu")
    if cpus < 1:
        raise ValueError("the Ray cluster has no CPU to run the encoder on")
    count = actors or max(1, cpus // 4)
    if count > cpus:
        raise ValueError(f"{count} CPU actors asked for, but the Ray cluster has {cpus} CPU(s)")
    threads = cpus // count
    return ActorPlan(count, 0, threads, "cpu", threads, decode_in_actor=True)


def embed_with_ray(
    project: Project,
    encoder: str | None = None,
    address: str | None = None,
    batch_size: int = 256,
    device: str = "auto",
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    image_size: int | None = None,
    actors: int | None = None,
) -> int:
    """Embed every readable item on a Ray cluster; returns the embed run id.

    ``encoder`` and ``image_size`` name the encoder as for ``workflow.embed`` (resolved by
    ``workflow.resolve_encoder``); ``address`` is a Ray cluster address (``auto``,
    ``ray://HOST:10001``, ``HOST:6379``), or None / ``local`` to start Ray on this machine (a Ray
    already initialised in this process is used as it is). ``batch_size`` images go to an actor
    at a time, and each such batch becomes one shard. ``actors`` overrides ``plan_actors``.
    Images that fail to decode are marked unreadable, as the local path does.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    ray = import_ray()
    model, description = workflow.resolve_encoder(project, encoder, "cpu", image_size)
    files = project.readable_files()
    apply_views(model, len(files))  # as workflow.embed does (decided for a CPU)
    # workflow.embed's params, less its ``encoder_key``: that key offers a run's rows for reuse
    # in its own file layout, which a Ray run does not write.
    params = {"encoder": description, "dtype": "float32"}
    if model is not None:
        params |= {"backbone": model.name, "image_size": model.image_size}
        if model.views > 1:
            params |= {"views": model.views, "grayscale": model.grayscale}
    if not len(files):
        raise workflow.WorkflowError(
            f"no readable images in {project.root}: run `explorer scan` first, or check the folder"
        )
    size = workflow.PIXEL_SIZE if model is None else model.image_size
    dim = size * size * 3 if model is None else model.feature_dim
    paths = [str(project.root / path) for path in files.paths]
    ids = files.item_ids

    started = connect(ray, address)  # before the run is recorded: an unreachable cluster leaves no trace
    run = None
    try:
        plan = plan_actors(ray.cluster_resources(), device, actors)
        run = project.start_run("embed", params)
        folder = project.run_dir(run)
        shards, weights = folder / SHARD_FOLDER, folder / WEIGHTS_FILE
        try:
            recipe = {"size": size, "weights": None if model is None else str(write_weights(model, weights))}
            del model  # the actors load their own copy
            _run_pipeline(ray, paths, recipe, plan, shards, batch_size, progress, cancel)
            progress(Progress("merge shards", 0, 1))
            merged = merge_shards(shards, len(paths), dim, folder / "embeddings.npy")
            for row, reason in merged.failed.items():
                project.mark_unreadable(int(ids[row]), reason)
            project.save_run_arrays(run, item_ids=ids[merged.rows])
            progress(Progress("merge shards", 1, 1))
        except BaseException as exc:
            _record_stop(project, run, exc)
            raise
        finally:
            shutil.rmtree(shards, ignore_errors=True)
            weights.unlink(missing_ok=True)
    finally:
        if started:
            ray.shutdown()
            if run is not None:  # an actor still writing while the shards were removed above left one behind
                shutil.rmtree(project.run_dir(run) / SHARD_FOLDER, ignore_errors=True)
    metrics = {"items": int(len(merged.rows)), "dim": int(dim), "ray_actors": plan.count, "shards": merged.shards}
    project.finish_run(run, "done", metrics)
    return run


def import_ray():
    """The ``ray`` module with Ray Data, or RayUnavailable saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailable(
            f"--ray needs Ray Data ({exc}): pip install 'embedding-explorer[ray]' (or pip install 'ray[data]')"
        ) from None
    return ray


def connect(ray, address: str | None) -> bool:
    """Join the cluster at ``address`` (None / ``local``: start one here); True when this call
    started Ray (and so should shut it down), False when Ray was already initialised."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "configure_logging": True}
    try:
        if address in (None, "", "local"):
            ray.init(include_dashboard=False, **quiet)
        else:
            check_reachable(address)
            ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        raise workflow.WorkflowError(f"cannot start or reach Ray at {address or 'this machine'}: {exc}") from None
    return True


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at a ``HOST:PORT`` or ``ray://HOST:PORT`` address: Ray
    itself keeps retrying an unreachable cluster for minutes. Other forms (``auto``) go to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise workflow.WorkflowError(
            f"no Ray cluster answers at {address} ({exc}): start one there with `ray start --head`, "
            "or check the address"
        ) from None


def write_weights(model: Encoder, path: Path) -> Path:
    """Save the encoder for the actors: architecture name, input size and a plain state dict.

    A state dict loads with ``weights_only=True`` on any worker with the same torch, whereas a
    pickled module depends on class paths and pulls the whole model through Ray's object
    store for every actor; and reading a run's checkpoint or a torch hub file again on each
    worker would need those files (and the project database) there too.
    """
    import torch

    state = {"backbone": model.name, "image_size": model.image_size, "weights": model.backbone.state_dict()}
    state |= {"views": model.views, "grayscale": bool(model.grayscale)}
    write_atomically(path, lambda f: torch.save(state, f))
    return path


def load_weights(path: str | Path, device: str) -> Encoder:
    """The encoder ``write_weights`` saved at ``path``, on ``device``."""
    import torch

    from explorer.ssl.backbones import make_backbone
    from explorer.ssl.encoder import Encoder

    state = torch.load(path, map_location="cpu", weights_only=True)
    backbone, dim = make_backbone(state["backbone"], int(state["image_size"]))
    backbone.load_state_dict(state["weights"])
    encoder = Encoder(backbone, state["backbone"], int(state["image_size"]), dim, torch.device(device))
    if int(state.get("views", 1)) > 1:
        encoder.use_views(int(state["views"]), bool(state["grayscale"]))
    return encoder


def decode_batch(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """{"row" (n,), "path" (n,)} -> {"row", "pixels" (n, size, size, 3) uint8, "error" (n,) str}.

    Exactly the local path's decoding (``load_rgb_array``); a failed image keeps zero pixels and
    its reason in ``error`` (empty for the others).
    """
    paths = batch["path"]
    pixels = np.zeros((len(paths), size, size, 3), np.uint8)
    errors = [""] * len(paths)
    for k, path in enumerate(paths):
        try:
            pixels[k] = load_rgb_array(Path(str(path)), size)
        except ImageError as exc:
            errors[k] = str(exc) or "cannot decode"
    return {"row": np.asarray(batch["row"], np.int64), "pixels": pixels, "error": np.array(errors, dtype=object)}


class EncoderActor:
    """Holds the encoder (loaded once per actor) and turns each decoded batch into a shard."""

    def __init__(self, recipe: dict, shard_folder: str, device: str, threads: int) -> None:
        if device == "cpu":
            import torch

            torch.set_num_threads(threads)
        self.size = int(recipe["size"])
        self.encoder = None if recipe["weights"] is None else load_weights(recipe["weights"], device)
        self.folder = Path(shard_folder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{"row", "path"} (decoded here) or ``decode_batch``'s output -> {"images": (1,) batch size}."""
        if "pixels" not in batch:
            batch = decode_batch(batch, self.size)
        rows = np.asarray(batch["row"], np.int64)
        errors = [str(e) for e in batch["error"]]
        ok = np.array([not e for e in errors], bool)
        pixels = np.ascontiguousarray(batch["pixels"][ok], dtype=np.uint8)
        if self.encoder is None:
            vectors = workflow.pixel_vectors(pixels)
        else:
            vectors = self.encoder.embed(pixels, batch_size=max(1, len(pixels)))
        if self.folder.is_dir():  # gone: the run was stopped and cleaned up; a late batch must not bring it back
            write_shard(self.folder, rows[ok], vectors, rows[~ok], [e for e in errors if e])
        return {"images": np.array([len(rows)], np.int64)}


def _run_pipeline(
    ray,
    paths: list[str],
    recipe: dict,
    plan: ActorPlan,
    shards: Path,
    batch_size: int,
    progress: ProgressFn,
    cancel: CancelToken | None,
) -> None:
    """Run read -> decode -> embed over ``paths``, reporting images done; shards land in ``shards``."""
    import pyarrow as pa

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller draws its own from our reports
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    shards.mkdir(parents=True, exist_ok=True)
    total = len(paths)
    block = max(batch_size, -(-total // MAX_BLOCKS))
    tables = [
        pa.table(
            {"row": np.arange(start, min(start + block, total), dtype=np.int64), "path": paths[start : start + block]}
        )
        for start in range(0, total, block)
    ]
    dataset = ray.data.from_arrow(tables)
    if not plan.decode_in_actor:
        dataset = dataset.map_batches(
            decode_batch, fn_kwargs={"size": recipe["size"]}, batch_size=batch_size, num_cpus=1
        )
    dataset = dataset.map_batches(
        EncoderActor,
        fn_constructor_kwargs={
            "recipe": recipe,
            "shard_folder": str(shards),
            "device": plan.device,
            "threads": plan.threads,
        },
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=plan.count),
        num_gpus=plan.num_gpus,
        num_cpus=plan.num_cpus,
    )
    if cancel is not None:
        cancel.raise_if_cancelled()
    done = 0
    progress(Progress("embed", 0, total, message=plan.describe()))
    batches = dataset.iter_batches(batch_size=None, batch_format="numpy")
    try:
        for batch in batches:
            done += int(batch["images"].sum())
            progress(Progress("embed", done, total, message=plan.describe()))
            if cancel is not None:
                cancel.raise_if_cancelled()
    finally:
        close = getattr(batches, "close", None)
        if close is not None:  # a generator: closing it stops the streaming executor now, not at GC
            close()


def _record_stop(project: Project, run: int, exc: BaseException) -> None:
    """Record why the run ended early, as ``workflow.embed`` does; its arrays never became current."""
    if isinstance(exc, Cancelled | KeyboardInterrupt):
        project.finish_run(run, "cancelled")
    else:
        project.finish_run(run, "failed", {"error": str(exc)})
