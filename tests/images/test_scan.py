import os

import numpy as np
from PIL import Image

from explorer.images.decode import open_image
from explorer.images.scan import scan_collection
from explorer.jobs import CancelToken
from explorer.store import Project


def _png(path, value=128, mode="RGB", size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode != "RGB" else (value, value, value)).save(path)


def test_scan_finds_images_recursively_and_reports_broken_ones(tmp_path):
    _png(tmp_path / "a.png")
    _png(tmp_path / "sub" / "b.jpg")
    _png(tmp_path / "sub" / "deeper" / "c.bmp")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    _png(tmp_path / ".hidden" / "skip.png")
    with Project(tmp_path) as project:
        _png(project.state_dir / "thumb.png")  # the project's own files are not part of the collection
        reports = []
        report = scan_collection(project, progress=reports.append)
        assert report.total == 5 and report.added == 5
        assert sorted(p for p, _ in report.unreadable) == ["broken.png", "empty.jpg"]
        assert [i.path for i in project.items()] == ["a.png", "sub/b.jpg", "sub/deeper/c.bmp"]
        assert reports[-1].done == reports[-1].total == 5
        assert all(item.error for item in project.unreadable())


def test_rescan_picks_up_added_changed_and_removed_files(tmp_path):
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    with Project(tmp_path) as project:
        scan_collection(project)
        cls = project.add_class("x")
        project.set_labels([project.item_by_path("b.png").id], cls.id)
        (tmp_path / "b.png").unlink()
        _png(tmp_path / "c.png")
        _png(tmp_path / "a.png", size=(16, 4))
        os.utime(tmp_path / "a.png", ns=(1, 1))
        report = scan_collection(project)
        assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 1, 0)
        assert [i.path for i in project.items()] == ["a.png", "c.png"]
        assert project.item_by_path("a.png").width == 16
        # the label of a missing file is kept for when it comes back
        _png(tmp_path / "b.png")
        scan_collection(project)
        assert "seed" in set(project.label_table().source)


def test_symlink_loop_does_not_trap_the_scan(tmp_path):
    _png(tmp_path / "a.png")
    os.symlink(tmp_path, tmp_path / "loop")
    with Project(tmp_path) as project:
        assert scan_collection(project).total == 1


def test_cancelled_scan_keeps_finished_batches(tmp_path):
    for k in range(3):
        _png(tmp_path / f"{k}.png")
    token = CancelToken()
    token.cancel()
    with Project(tmp_path) as project:
        try:
            scan_collection(project, cancel=token)
        except Exception as exc:
            assert type(exc).__name__ == "Cancelled"
        assert scan_collection(project).added == 3


def test_odd_image_modes_reach_rgb(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red: looks white
    rgba.save(tmp_path / "rgba.png")
    Image.fromarray(np.full((4, 4), 60000, np.uint16)).save(tmp_path / "deep.png")
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 255] * 256)
    palette.save(tmp_path / "pal.gif")
    for name in ("rgba.png", "deep.png", "cmyk.jpg", "pal.gif"):
        image = open_image(tmp_path / name)
        assert image.mode == "RGB" and image.size == (4, 4)
    assert open_image(tmp_path / "rgba.png").getpixel((0, 0)) == (255, 255, 255)
    assert open_image(tmp_path / "pal.gif").getpixel((0, 0)) == (0, 0, 255)
