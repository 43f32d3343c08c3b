"""Query by an image: the collection's images most like a file from anywhere."""

import numpy as np
import pytest
from PIL import Image

from explorer import workflow
from explorer.cli import main
from explorer.ssl.trainer import TrainConfig
from explorer.store import Project
from tests.blobs import mapped_blobs


@pytest.fixture
def blobs(tmp_path):
    root = tmp_path / "blobs"
    return root, mapped_blobs(root)


def _outside_copy(root, name, tmp_path):
    """A slightly changed copy of ``name`` outside the collection."""
    pixels = np.asarray(Image.open(root / name).convert("RGB"), np.int16)
    query = tmp_path / "query.png"
    Image.fromarray(np.clip(pixels + 6, 0, 255).astype(np.uint8)).save(query)
    return query


def test_the_nearest_images_are_the_original_and_its_class(blobs, tmp_path, capsys):
    root, truth = blobs
    name = sorted(truth)[25]
    query = _outside_copy(root, name, tmp_path)
    with Project(root) as project:
        found = workflow.similar(project, query, n=10)
    assert found.paths[0] == name and found.similarities[0] > 0.99 and found.encoder == "pixels"
    assert (np.diff(found.similarities) <= 1e-6).all()
    assert [truth[p] for p in found.paths] == [truth[name]] * 10
    assert main(["similar", str(root), str(query), "--n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == found.paths[:3]


def test_a_trained_encoder_embeds_the_query_as_it_embedded_the_collection(blobs, tmp_path):
    root, truth = blobs
    with Project(root) as project:
        workflow.train(project, TrainConfig(epochs=1, image_size=16, batch_size=20, device="cpu"))
        workflow.embed(project)
        workflow.make_map(project, k=8)
        name = sorted(truth)[5]
        found = workflow.similar(project, _outside_copy(root, name, tmp_path), n=60)
        itself = workflow.similar(project, root / name, n=1)
    assert found.encoder.startswith("train run") and len(found.paths) == 60
    assert found.paths.index(name) < 3  # the original is (about) the nearest
    # the file itself comes back as its own stored vector: same encoder, same image size
    assert itself.paths == [name] and itself.similarities[0] > 0.9999


def test_a_file_that_is_not_an_image_is_named(blobs, tmp_path, capsys):
    root, _ = blobs
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert main(["similar", str(root), str(broken)]) != 0
    err = capsys.readouterr().err
    assert "cannot read the image" in err and "broken.png" in err
