"""Whatever a real image folder contains, each file ends as a usable item or as a listed
unreadable file with its reason, and the rest of the collection goes through every step."""

import csv
import os

import pytest

from explorer import workflow
from explorer.images.scan import scan_collection
from explorer.store import Project
from tests.blobs import write_blobs
from tests.robustness.hostile import LONG_NAME, write_hostile_corpus

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def hostile(tmp_path):
    root = tmp_path / "collection"
    expected = write_hostile_corpus(root)
    expected |= {f"blobs/{name}": None for name in write_blobs(root / "blobs", per_class=3, size=16)}
    if AS_ROOT:
        # Root reads a file whatever its permissions, so this case cannot be unreadable here;
        # it is still scanned, and asserted as a usable item instead.
        expected["unreadable-permissions.png"] = None
    yield root, expected
    os.chmod(root / "unreadable-permissions.png", 0o644)  # let pytest clean up


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_every_hostile_file_is_an_item_or_a_listed_reason_and_the_rest_goes_through(hostile):
    root, expected = hostile
    with Project(root) as project:
        report = scan_collection(project)
        assert report.total == len(expected)  # nothing skipped silently, the folder loop not followed
        items = {item.path: item for item in project.items(readable_only=False)}
        assert set(items) == set(expected)
        for path, reason in expected.items():
            item = items[path]
            if reason is None:
                assert item.readable, f"{path}: {item.error}"
            else:
                assert not item.readable and reason in item.error, f"{path}: {item.error!r}, expected {reason!r}"
        assert {p for p, _ in report.unreadable} == {p for p, r in expected.items() if r}
        assert report.summary().count("\n") >= 1
        upright = items["exif-rotated.jpg"]
        assert (upright.width, upright.height) == (32, 64)  # stored 64x32, shown turned upright
        assert items[LONG_NAME].readable

        # two files disappear between the scan and the embedding
        for gone in ("blobs/img-0000.png", "good/plain.jpg"):
            (root / gone).unlink()
        run = workflow.embed(project, workflow.PIXELS)
        usable = sorted(
            p for p, r in expected.items() if r is None and p not in ("blobs/img-0000.png", "good/plain.jpg")
        )
        paths = project.paths_by_id()
        embedded = project.load_run_array(run, "item_ids")
        assert sorted(paths[int(i)] for i in embedded) == usable
        assert project.run(run).status == "done"
        reasons = {item.path: item.error for item in project.unreadable()}
        assert "removed since the scan" in reasons["blobs/img-0000.png"]

        # the rest goes on: map, a label, propagation, export
        workflow.make_map(project, k=5)
        cls = project.add_class("photo")
        project.set_labels([project.item_by_path("good/plain.png").id], cls.id)
        result = workflow.propagate(project)
        assert sorted(paths[int(i)] for i in result.item_ids) == usable and (result.class_ids >= 0).sum() > 1
        out = root.parent / "labels.csv"
        workflow.export(project, "csv", out, ("seed", "pseudo"))
        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert sorted(r["path"] for r in rows) == usable  # unreadable files are listed, never exported
        assert {r["label"] for r in rows} <= {"photo", ""} and sum(r["source"] == "seed" for r in rows) == 1

        # a rescan notices the removed files are gone (their labels would be kept) and re-checks the rest
        again = scan_collection(project)
        assert again.removed == 2
        assert "blobs/img-0000.png" not in {item.path for item in project.unreadable()}
    print(
        f"\n{len(expected)} hostile and ordinary files scanned, {len(report.unreadable)} listed unreadable, 0 crashes"
    )


def test_a_file_made_readable_again_comes_back_on_rescan(tmp_path):
    root = tmp_path / "collection"
    write_blobs(root, per_class=1, size=8)
    target = root / "img-0001.png"
    good = target.read_bytes()
    target.write_bytes(good[:20])  # damaged, same mtime after we restore it below
    stat = target.stat()
    with Project(root) as project:
        scan_collection(project)
        assert [i.path for i in project.unreadable()] == ["img-0001.png"]
        target.write_bytes(good[:20])
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        # (a permission fixed by chmod changes neither size nor mtime either)
        target.write_bytes(good)
        os.truncate(target, len(good))
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        scan_collection(project)
        assert project.item_by_path("img-0001.png").readable
