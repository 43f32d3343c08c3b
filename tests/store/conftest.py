import pytest

from explorer.store import Project, ScannedFile


@pytest.fixture
def project(tmp_path):
    """A project of six readable 8x8 images, closed after the test."""
    p = Project(tmp_path)
    p.record_scan([ScannedFile(f"{k}.png", 10, 1, 8, 8, "RGB") for k in range(6)], gone=[])
    yield p
    p.close()
