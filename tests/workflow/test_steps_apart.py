"""A pipeline step in a process of its own (``steps.run_apart``): what the window's worker thread sees
is what it would see had the step run on it: progress, result, error, cancel; and a dying child says so."""

from __future__ import annotations

import os
import time

import pytest

from explorer.jobs import Cancelled, CancelToken, Progress
from explorer.store import Project, ProjectError
from explorer.workflow import WorkflowError, steps
from tests.blobs import write_blobs


# Targets run in the child: module-level, so that the spawned interpreter can import them.
def reports_and_returns(step, project, progress, cancel, **kwargs):
    for done in range(1, 4):
        progress(Progress(step, done, 3, loss=float(done)))
    return {"pid": os.getpid(), "items": project.item_count(), **kwargs}


def waits_for_cancel(step, project, progress, cancel, **kwargs):
    progress(Progress(step, 0, None, "waiting"))
    while True:
        cancel.raise_if_cancelled()
        time.sleep(0.01)


def refuses(step, project, progress, cancel, **kwargs):
    raise ProjectError("no classes yet: add one first")


def dies(step, project, progress, cancel, **kwargs):
    os._exit(7)


@pytest.fixture
def project(tmp_path):
    from explorer import workflow

    write_blobs(tmp_path / "c", per_class=2)
    with Project(tmp_path / "c") as project:
        workflow.scan(project)
        yield project


def test_progress_and_result_come_back_from_the_child(project):
    seen = []
    result = steps.run_apart("train", project, progress=seen.append, target=reports_and_returns, extra=5)
    assert result == {"pid": result["pid"], "items": 6, "extra": 5} and result["pid"] != os.getpid()
    assert [(r.done, r.loss) for r in seen] == [(1, 1.0), (2, 2.0), (3, 3.0)]


def test_cancel_reaches_the_child(project):
    token = CancelToken()

    def cancel_when_started(report):
        token.cancel()

    with pytest.raises(Cancelled):
        steps.run_apart("train", project, progress=cancel_when_started, cancel=token, target=waits_for_cancel)


def test_the_childs_error_keeps_its_type_and_words(project):
    with pytest.raises(ProjectError, match="no classes yet: add one first"):
        steps.run_apart("train", project, target=refuses)


def test_a_child_that_dies_says_so(project):
    with pytest.raises(WorkflowError, match="train stopped unexpectedly: its process ended with exit code 7"):
        steps.run_apart("train", project, target=dies)


def test_a_real_step_apart_records_its_run_in_the_same_project(project):
    """Embedding with raw pixels in the child: the run and the embeddings are there for this process."""
    from explorer import workflow

    seen = []
    run = steps.run_apart("embed", project, progress=seen.append, encoder=workflow.PIXELS)
    assert project.latest_run("embed").id == run and project.latest_run("embed").status == "done"
    assert workflow.current_embeddings(project).vectors.shape[0] == 6
    assert seen and seen[-1].step.startswith("embed")
