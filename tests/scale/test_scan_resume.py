"""An interrupted scan keeps what it recorded; the next one decodes only what is left or changed."""

import os

import pytest
from PIL import Image

from explorer.images import scan
from explorer.jobs import Cancelled, CancelToken
from explorer.store import Project


def test_a_stopped_scan_is_continued_without_decoding_files_again(tmp_path, monkeypatch):
    for k in range(23):
        Image.new("RGB", (6, 6), (k * 10, 0, 0)).save(tmp_path / f"{k:02d}.png")
    probed = []
    real = scan.probe

    def counting(path):
        probed.append(path.name)
        return real(path)

    monkeypatch.setattr(scan, "probe", counting)
    monkeypatch.setattr(scan, "BATCH", 5)
    token = CancelToken()

    def stop_after_two_batches(report):
        if report.done >= 10:
            token.cancel()

    with Project(tmp_path) as project:
        with pytest.raises(Cancelled):
            scan.scan_collection(project, stop_after_two_batches, token)
        assert project.item_count() == 10  # two batches of 5 were recorded before the stop
        first = set(probed)
        probed.clear()
        Image.new("RGB", (6, 6), (0, 255, 0)).save(tmp_path / "00.png")  # changed since it was recorded
        os.utime(tmp_path / "00.png", ns=(1, 1))
        report = scan.scan_collection(project)
        assert (report.unchanged, report.changed, report.added) == (9, 1, 13)
        assert sorted(probed) == sorted({"00.png"} | ({f"{k:02d}.png" for k in range(23)} - first))
        assert project.item_count() == 23
        probed.clear()
        assert scan.scan_collection(project).unchanged == 23 and probed == []
