"""The labelling loop without a window: a Session and a LabellingLoop on the shapes project.

Seed labels -> propagation lands -> the calibration it asks for -> propagation again; Label next
one image at a time; latest request wins; results for a project no longer shown are dropped;
pipeline jobs one at a time, cancelled, and what lands after them.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from explorer.gui.labelling_loop import LabellingLoop
from explorer.gui.session import Session
from tests.gui.conftest import CLUSTERS, fabricate_map


class Heard:
    """What the loop said through its signals, in order."""

    def __init__(self, loop: LabellingLoop) -> None:
        self.events: list[tuple] = []
        loop.message.connect(lambda text, error: self.events.append(("message", text, error)))
        loop.failed.connect(lambda text: self.events.append(("failed", text)))
        loop.propagationText.connect(lambda text: self.events.append(("text", text)))
        loop.galleryShown.connect(lambda ids, title: self.events.append(("gallery", np.asarray(ids).tolist(), title)))
        loop.stepFinished.connect(lambda name, result: self.events.append(("step", name, result)))
        for name in ("propagation", "calibration"):
            runner = getattr(loop, name)
            runner.started.connect(lambda r, _n, name=name: self.events.append((name, "started", r)))
            runner.finished.connect(lambda r, _n, _x, name=name: self.events.append((name, "finished", r)))

    def texts(self) -> list[str]:
        """The propagation lines, in order."""
        return [text for (text,) in self.said("text")]

    def said(self, kind: str) -> list:
        return [e[1:] for e in self.events if e[0] == kind]

    def messages(self) -> list[str]:
        return [text for text, _ in self.said("message")]


@pytest.fixture
def loop(qtbot, project_dir, wait_opened):
    session = Session()
    labelling = LabellingLoop(session)
    labelling.heard = Heard(labelling)
    session.open_project(project_dir)
    wait_opened(session)
    yield labelling
    labelling.shutdown()
    session.reading.wait(5000)
    session.close_project()


def add_classes(session: Session) -> dict[str, int]:
    for name in CLUSTERS:
        session.add_class(name)
    return {c.name: c.id for c in session.classes}


def cluster_ids(session: Session, cluster: str) -> list[int]:
    return [int(i) for i in session.map.item_ids if session.path_of(int(i)).startswith(cluster + "/")]


def seed(session: Session, per_cluster: int, start: int = 0) -> None:
    """Label ``per_cluster`` images of each cluster with its class, one label action a cluster."""
    classes = {c.name: c.id for c in session.classes}
    for cluster in CLUSTERS:
        session.set_selection(cluster_ids(session, cluster)[start : start + per_cluster])
        assert session.label_targets(classes[cluster])


def settled(loop: LabellingLoop) -> bool:
    return not loop.busy and not loop.propagation_due


def test_seed_labels_propagate_then_calibrate_then_propagate_again(qtbot, loop):
    s, heard = loop.session, loop.heard
    add_classes(s)
    seed(s, per_cluster=2)
    assert loop.propagation_due  # debounced: the edits of a burst propagate once
    qtbot.waitUntil(lambda: settled(loop) and s.counts()["pseudo"] > 0, timeout=15000)
    assert s.counts()["pseudo"] == 54
    texts = heard.texts()
    assert texts[0] == "propagating…" and "not yet calibrated" in texts[-1]

    seed(s, per_cluster=6, start=2)  # 24 labels: enough to calibrate on
    qtbot.waitUntil(lambda: settled(loop) and "calibrated on 24 hidden" in heard.texts()[-1], timeout=30000)
    steps = [(kind, what) for kind, what, *_ in heard.events if kind in ("propagation", "calibration")]
    steps = [step for step in steps if step[1] in ("started", "finished")]
    for k, step in enumerate(steps):
        if step == ("calibration", "started"):  # asked for by a propagation as it lands (heard nested in it)
            assert ("propagation", "finished") in steps[k - 1 : k + 2]
    last = len(steps) - 1 - steps[::-1].index(("calibration", "finished"))
    assert ("propagation", "started") in steps[last - 1 : last + 2]  # it lands: propagate again to show it
    assert steps[-1] == ("propagation", "finished")
    pseudo = s.labels.source == "pseudo"
    assert pseudo.sum() == 36 and s.labels.confidence[pseudo].mean() > 0.8


def test_label_next_shows_one_suggestion_at_a_time(qtbot, loop):
    from explorer import workflow

    s = loop.session
    workflow.embed(s.project, workflow.PIXELS)
    workflow.make_map(s.project)  # a real map, which knows its embeddings
    s.reload_map()
    classes = add_classes(s)
    assert loop.suggest_next(4)
    qtbot.waitUntil(lambda: bool(loop.heard.said("gallery")), timeout=30000)
    ((ids, title),) = loop.heard.said("gallery")
    assert title == "Label next" and ids == workflow.suggest(s.project, 4).item_ids.tolist()
    assert loop.to_label == ids and s.selection.tolist() == [ids[0]] and s.current == ids[0]
    for k, item in enumerate(ids):
        assert s.current == item
        s.label_targets(classes[s.path_of(item).split("/")[0]])
        assert loop.to_label == ids[k + 1 :]
    qtbot.waitUntil(lambda: "every suggestion has a label" in " ".join(loop.heard.messages()), timeout=5000)
    assert s.current == ids[-1]  # nothing left: it stays on the last one


def test_the_latest_propagation_request_wins(qtbot, loop):
    s, heard = loop.session, loop.heard
    loop.auto_propagate = False
    add_classes(s)
    seed(s, per_cluster=2)
    assert not loop.propagation_due
    first, second = loop.propagate(), loop.propagate()
    assert 0 < first < second
    qtbot.waitUntil(lambda: settled(loop) and s.counts()["pseudo"] > 0, timeout=15000)
    landed = [r for what, r in heard.said("propagation") if what == "finished"]
    assert first not in landed and landed[0] == second  # (a calibration may propagate again after it)


def test_a_result_for_a_project_no_longer_shown_is_dropped(qtbot, loop, monkeypatch, wait_opened):
    s = loop.session
    loop.auto_propagate = False
    add_classes(s)
    seed(s, per_cluster=2)
    applied = []
    monkeypatch.setattr(s, "apply_pseudo_labels", lambda *a: applied.append(a))
    root = s.project.root
    assert loop.propagate()
    s.open_project(root)  # the same folder again: a new project while the propagation runs
    wait_opened(s)
    qtbot.waitUntil(lambda: settled(loop), timeout=15000)
    assert applied == []


@pytest.fixture
def slow_steps(monkeypatch):
    """Pipeline steps that run until cancelled."""
    from explorer.gui import labelling_loop

    def slow(step, project, **kwargs):
        def job(progress, cancel):
            while not cancel.cancelled:
                time.sleep(0.01)
            cancel.raise_if_cancelled()

        return job

    monkeypatch.setattr(labelling_loop, "workflow_job", slow)


def test_pipeline_jobs_run_one_at_a_time_and_cancel(qtbot, loop, slow_steps, tmp_path):
    assert loop.run_step("build")
    assert loop.jobs.current_name == "build"
    assert loop.run_step("scan") == 0 and loop.export_to(tmp_path / "x.csv") == 0 and loop.evaluate() == 0
    assert loop.heard.messages()[-1] == "build is still running: wait or cancel it first"
    loop.jobs.cancel()
    qtbot.waitUntil(lambda: not loop.jobs.busy, timeout=5000)
    assert loop.heard.messages()[-1] == "build cancelled"
    assert loop.heard.said("step") == []  # nothing landed


def test_a_map_step_shows_the_new_map_and_propagates_on_it(qtbot, loop, monkeypatch):
    from explorer.gui import labelling_loop

    s = loop.session
    add_classes(s)
    loop.auto_propagate = False
    seed(s, per_cluster=2)
    old = s.map.run_id
    monkeypatch.setattr(labelling_loop, "workflow_job", lambda step, project, **kw: lambda **_: fabricate_map(project))
    assert loop.run_step("map")
    qtbot.waitUntil(lambda: bool(loop.heard.said("step")), timeout=15000)
    ((name, run),) = loop.heard.said("step")
    assert name == "map" and run == s.map.run_id != old and loop.last_result == run
    assert loop.heard.messages()[-1] == f"map finished (run {run})"
    assert loop.propagation_due  # a new map: propagate on it
    qtbot.waitUntil(lambda: settled(loop) and s.counts()["pseudo"] > 0, timeout=15000)


def test_a_folder_never_scanned_is_scanned_once_it_is_open(qtbot, tmp_path, wait_opened):
    from tests.gui.conftest import write_images

    write_images(tmp_path / "new")
    s = Session()
    labelling = LabellingLoop(s)
    started = []  # heard, not sampled: a scan of 60 small images can be over before a poll sees it
    labelling.jobs.started.connect(lambda _request, name: started.append(name))
    s.open_project(tmp_path / "new")
    assert not labelling.jobs.busy  # not before the tables landed
    wait_opened(s)
    qtbot.waitUntil(lambda: not labelling.jobs.busy and s.counts()["items"] == 60, timeout=30000)
    assert started == ["scan"]
    labelling.shutdown()
    s.close_project()


def test_a_project_labelled_before_propagates_on_opening(qtbot, project_dir, wait_opened):
    """Reopened with labels and a map, the loop propagates once by itself, so the summary (how much
    is right, what to do next) is there before any click; a project with no labels does not."""
    first = Session()
    labelling = LabellingLoop(first)
    first.open_project(project_dir)
    wait_opened(first)
    assert not labelling.propagation_due  # no labels yet: nothing to propagate
    add_classes(first)
    seed(first, per_cluster=6)
    qtbot.waitUntil(lambda: settled(labelling), timeout=30000)
    labelling.shutdown()
    first.close_project()

    again = Session()
    reopened = LabellingLoop(again)
    heard = Heard(reopened)
    again.open_project(project_dir)
    wait_opened(again)
    qtbot.waitUntil(lambda: settled(reopened) and bool(heard.texts()), timeout=30000)
    assert "human label(s)" in heard.texts()[-1] and heard.said("propagation")
    reopened.shutdown()
    again.close_project()
