"""The pipeline's steps by name, and running one in a process of its own.

The window starts steps by name (``run_step``). Steps that load torch (training, embedding with an
encoder, refine, build, evaluate) run in a spawned child process (``run_apart``): importing torch holds the
GIL in one piece for about 200 ms (its ``torch._C`` initialisation), and a worker thread cannot hide
that from the window; a child has its own GIL. The calling thread only forwards the child's progress
reports and the cancel flag, and gets its result or its error back, as if it had run here.
"""

from __future__ import annotations

import atexit
import logging
import pickle
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from explorer.jobs import Cancelled, CancelToken, ProgressFn, no_progress
from explorer.workflow.runs import WorkflowError

log = logging.getLogger(__name__)

# Steps that may load torch: the window runs them apart (see the module docstring).
APART = frozenset({"train", "embed", "run_all", "refine", "evaluate"})

# After a cancel, how long the child gets to stop at its next batch before it is ended.
CANCEL_GRACE_S = 60.0
# How often the calling thread looks at the cancel flag while the child is quiet.
POLL_S = 0.1


def run_step(step: str, project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None, **kwargs):
    """``explorer.workflow.<step>(project, ...)`` by name, plus the window's own steps: ``quick_map``
    (raw pixels, scanned first when nothing is) and ``refine``. ``training``: the window's
    remembered training settings, made a ``TrainConfig`` here (so that torch loads here)."""
    from explorer import workflow

    if "training" in kwargs:
        from explorer.ssl.trainer import TrainConfig

        kwargs["config"] = TrainConfig(**kwargs.pop("training"))
    if step == "quick_map":  # no training: raw pixels, for a first look in seconds
        if not project.item_count():
            workflow.scan(project, progress=progress, cancel=cancel)
        workflow.embed(project, encoder=workflow.PIXELS, progress=progress, cancel=cancel)
        return workflow.make_map(project, progress=progress, cancel=cancel)
    if step == "refine":  # its own module: rounds of train, embed, map and propagate
        from explorer.workflow.refine import refine

        return refine(project, progress=progress, cancel=cancel, **kwargs)
    return getattr(workflow, step)(project, progress=progress, cancel=cancel, **kwargs)


def run_apart(
    step: str,
    project,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    target: Callable | None = None,
    **kwargs,
):
    """``run_step(step, project, ...)`` in a spawned child process that opens the same project;
    blocks until it ends. Its progress reports reach ``progress`` here; ``cancel`` stops it at its
    next batch (``Cancelled`` here, as in a thread); its error is raised here with its own type and
    message (its traceback goes to the log), and a child that dies says how. ``target``: a
    module-level function called instead of ``run_step`` (tests)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads or Qt state
    reader, writer = context.Pipe(duplex=False)
    stop = context.Event()
    child = context.Process(
        target=_child_main,
        args=(target or run_step, step, str(project.root), str(project.state_dir), kwargs, writer, stop),
        name=f"explorer-{step}",
    )
    child.start()
    writer.close()  # the child's end: EOF here once the child is gone
    with _live_lock:
        _live.add(child)
    try:
        return _follow(child, reader, stop, step, progress, cancel)
    finally:
        reader.close()
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()
            child.join()
        with _live_lock:
            _live.discard(child)


def _follow(child, reader, stop, step: str, progress: ProgressFn, cancel: CancelToken | None):
    """Forward the child's messages until its outcome arrives; returns its result or raises."""
    import time

    asked_to_stop = None
    while True:
        if cancel is not None and cancel.cancelled and asked_to_stop is None:
            stop.set()
            asked_to_stop = time.monotonic()
        if asked_to_stop is not None and time.monotonic() - asked_to_stop > CANCEL_GRACE_S:
            child.terminate()
            raise Cancelled()
        if not reader.poll(POLL_S):
            continue
        try:
            kind, payload = reader.recv()
        except EOFError:  # the child ended without an outcome: killed, out of memory, a crash
            child.join(timeout=5)
            if asked_to_stop is not None:
                raise Cancelled() from None
            raise WorkflowError(
                f"{step} stopped unexpectedly: its process ended with exit code {child.exitcode}"
                " (out of memory or a crash in a library; the log and the terminal say more)"
            ) from None
        if kind == "progress":
            progress(payload)
        elif kind == "finished":
            return payload
        elif kind == "cancelled":
            raise Cancelled()
        else:  # "failed": (the exception, its traceback as text)
            error, text = payload
            log.error("%s failed in its own process:\n%s", step, text)
            raise error


def _child_main(target: Callable, step: str, root: str, state_dir: str, kwargs: dict, writer, stop) -> None:
    """The child: open the project, run the step, send its reports and its outcome."""
    from explorer.store import Project

    def progress(report) -> None:
        writer.send(("progress", report))

    try:
        project = Project(Path(root), Path(state_dir), create=False)
        try:
            result = target(step, project, progress=progress, cancel=CancelToken(stop), **kwargs)
        finally:
            project.close()
        outcome = ("finished", result)
        pickle.dumps(outcome)  # a result that cannot cross is an error here, not a silent hang there
    except Cancelled:
        outcome = ("cancelled", None)
    except BaseException as exc:
        outcome = ("failed", (_portable(exc), traceback.format_exc()))
    writer.send(outcome)
    writer.close()


def _portable(exc: BaseException) -> BaseException:
    """``exc`` itself when it survives pickling with its message, else a WorkflowError that keeps it."""
    try:
        copy = pickle.loads(pickle.dumps(exc))
        if str(copy) == str(exc):
            return copy
    except Exception:  # an exception class with a custom constructor, or an unpicklable argument
        pass
    return WorkflowError(f"{str(exc).strip() or type(exc).__name__} ({type(exc).__name__})")


# Children still running when the program exits (the window closed mid-training) are ended: Python
# would otherwise wait for them at exit.
_live: set = set()
_live_lock = threading.Lock()


@atexit.register
def _end_children() -> None:
    with _live_lock:
        children = list(_live)
    for child in children:
        if child.is_alive():
            child.terminate()
            child.join(timeout=5)
