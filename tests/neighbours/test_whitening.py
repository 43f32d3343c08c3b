"""Whitening learned embeddings: the class signal in a weak direction wins over strong nuisances,
and maps of neural embeddings propagate through whitened vectors (pixels and imports keep theirs)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import workflow
from explorer.labels.propagate import Diffusion
from explorer.neighbours.whiten import MIN_ROWS, fit_whitening, whitens
from explorer.ssl.evaluate import knn_accuracy
from explorer.store import Project
from explorer.store.current import map_bridge, map_embeddings
from explorer.workflow.labelling import map_solver
from tests.blobs import write_blobs


def _nuisance_dominated(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes apart along one quiet direction; three loud directions of nuisance."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    quiet = rng.normal(0, 0.3, (n, 12))
    quiet[:, 0] += np.where(y == 1, 1.0, -1.0)
    loud = rng.normal(0, 15.0, (n, 3))
    x = np.hstack([loud, quiet]) + 10.0  # off-centre, as features after a ReLU are
    return x.astype(np.float32), y


def test_whitening_lets_the_quiet_class_direction_decide_the_neighbours():
    x, y = _nuisance_dominated()
    whitening = fit_whitening(x)
    assert whitening is not None and whitening.matrix.shape == (15, 15)
    white = whitening.apply(x)
    assert np.allclose(np.linalg.norm(white, axis=1), 1.0, atol=1e-5)
    before, after = knn_accuracy(x, y, k=10), knn_accuracy(white, y, k=10)
    assert before < 0.7 and after > 0.9, (before, after)
    # the directions are estimated from a sample when there are many rows: the result barely moves
    sampled = fit_whitening(x, fit_rows=300)
    assert knn_accuracy(sampled.apply(x), y, k=10) > 0.9


def test_whitening_keeps_at_most_the_asked_directions_and_needs_enough_rows():
    x, _ = _nuisance_dominated()
    assert fit_whitening(x, dimensions=4).apply(x[:7]).shape == (7, 4)
    assert fit_whitening(x[: MIN_ROWS - 1]) is None


@pytest.mark.parametrize(
    ("encoder", "expected"),
    [
        ("train run 3", True),
        ("torchvision:resnet18", True),
        ("/models/encoder.pt", True),
        ("pixels", False),
        ("imported from vectors.npz (ab12)", False),
        ("", False),
    ],
)
def test_which_embeddings_are_whitened(encoder, expected):
    assert whitens(encoder) is expected


def _embedded(project: Project, encoder: str, x: np.ndarray) -> int:
    """An embed run of ``x`` (one row per item, in item order) as ``encoder`` made it."""
    run = project.start_run("embed", {"encoder": encoder})
    ids = np.sort(np.fromiter(project.paths_by_id(), np.int64))
    project.save_run_arrays(run, item_ids=ids, embeddings=x[: len(ids)])
    project.finish_run(run, "done", {"items": len(ids)})
    return run


def test_a_map_of_trained_embeddings_propagates_through_whitened_vectors(tmp_path):
    write_blobs(tmp_path / "c", per_class=80, size=12)  # 240 images: enough for whitening
    x, y = _nuisance_dominated(240)
    with Project(tmp_path / "c") as project:
        workflow.scan(project)
        _embedded(project, "train run 1", x)
        first = workflow.make_map(project, k=15)
        assert project.run(first).metrics["whitened"] == 15
        vectors = map_embeddings(project, first, 240)
        assert vectors.shape == (240, 15) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert knn_accuracy(vectors, y, k=10) > 0.9
        # the propagation's bridge: the first neighbours of the whitened vectors' own graph
        bridge = map_bridge(project, first)
        assert bridge[0].shape == (240, 11) and (bridge[0][:, 0] == np.arange(240)).all()
        agree = lambda ids: float((y[ids[:, 1:11]] == y[:, None]).mean())  # noqa: E731
        assert agree(bridge[0]) > agree(project.load_run_array(first, "knn_indices")) + 0.1  # not the raw graph
        _, _, solver = map_solver(project)
        assert solver.system.nnz > Diffusion(solver.graph, power=1.0, neighbours=None).system.nnz  # it is used
        # the same embeddings mapped again: graph, label space, whitening and bridge are reused as they were
        again = workflow.make_map(project, k=15)
        assert np.array_equal(map_embeddings(project, again, 240), vectors)
        assert project.run(again).metrics["whitened"] == 15
        np.testing.assert_array_equal(map_bridge(project, again)[0], bridge[0])
        # a map made before bridges: its label space is made anew, with the bridge
        for name in ("bridge_indices", "bridge_similarities"):
            (project.run_dir(again) / f"{name}.npy").unlink()
        upgraded = workflow.make_map(project, k=15)
        np.testing.assert_array_equal(map_bridge(project, upgraded)[0], bridge[0])
        # raw pixels are not whitened: the map's vectors are the embed run's
        _embedded(project, "pixels", x)
        pixels = workflow.make_map(project, k=15)
        assert "whitened" not in project.run(pixels).metrics and map_bridge(project, pixels) is None
        assert map_embeddings(project, pixels, 240).shape == (240, 15)
        assert np.array_equal(map_embeddings(project, pixels, 240), x)
