"""Embeddings computed elsewhere: .npy with a paths file, or Parquet, stored as the current embeddings."""

import re

import numpy as np
import pytest

from explorer import workflow
from explorer.cli import main
from explorer.exchange.embeddings import EmbeddingFileError, import_embeddings
from tests.exchange.conftest import store_state, write_csv


def _vectors(project, dim=6, seed=0):
    """path -> a vector that separates the three classes (class one-hot + noise)."""
    rng = np.random.default_rng(seed)
    classes = sorted(set(project.truth.values()))
    out = {}
    for path, cls in sorted(project.truth.items()):
        v = rng.normal(scale=0.1, size=dim)
        v[classes.index(cls)] += 3.0
        out[path] = v.astype(np.float32)
    return out


def _check_current(project, vectors):
    current = workflow.current_embeddings(project)
    paths = project.paths_by_id()
    assert list(current.item_ids) == sorted(current.item_ids)
    for item_id, stored in zip(current.item_ids, current.vectors):
        want = vectors[paths[int(item_id)]]
        np.testing.assert_allclose(stored, want / np.linalg.norm(want), rtol=1e-5)
    return current


def test_npy_with_a_paths_file_becomes_the_current_embeddings(tmp_path, project):
    vectors = _vectors(project)
    paths = list(reversed(vectors))[:-1] + ["not/here.png"]  # any order; one unknown; one image left without
    np.save(tmp_path / "v.npy", np.stack([vectors.get(p, np.ones(6, np.float32)) for p in paths]).astype(np.float64))
    (tmp_path / "paths.txt").write_text("\n".join(paths) + "\n")
    report = import_embeddings(project, tmp_path / "v.npy", tmp_path / "paths.txt")
    assert (report.items, report.dim, report.missing, report.unknown_paths) == (11, 6, 1, ["not/here.png"])
    assert "not/here.png" in report.summary() and "1 image(s) of the collection have no vector" in report.summary()
    current = _check_current(project, vectors)
    assert current.run_id == report.run_id and current.vectors.dtype == np.float32
    run = project.run(report.run_id)
    assert run.status == "done" and run.params["encoder"].startswith("imported from")
    # a CSV paths file (with a path column) works too, and absolute paths inside the collection count
    write_csv(tmp_path / "paths.csv", [(str(project.root / p),) for p in vectors], header=("path",))
    np.save(tmp_path / "all.npy", np.stack(list(vectors.values())))
    first = import_embeddings(project, tmp_path / "all.npy", tmp_path / "paths.csv")
    assert first.items == 12
    # the map keeps positions only across runs of the same vectors: the encoder name says which
    second = import_embeddings(project, tmp_path / "all.npy", tmp_path / "paths.csv")
    np.save(tmp_path / "all.npy", np.stack(list(vectors.values())) + 1)
    third = import_embeddings(project, tmp_path / "all.npy", tmp_path / "paths.csv")
    encoder = [project.run(r.run_id).params["encoder"] for r in (first, second, third)]
    assert encoder[0] == encoder[1] != encoder[2]


def test_parquet_with_path_and_embedding_columns(tmp_path, project):
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = _vectors(project, dim=5)
    table = pa.table(
        {
            "path": list(vectors),
            "embedding": pa.array([v.tolist() for v in vectors.values()], pa.list_(pa.float64())),
            "other": list(range(len(vectors))),
        }
    )
    pq.write_table(table, tmp_path / "clip.parquet")
    assert import_embeddings(project, tmp_path / "clip.parquet").items == 12
    _check_current(project, vectors)
    fixed = table.set_column(
        1, "embedding", pa.FixedSizeListArray.from_arrays(np.concatenate(list(vectors.values())), 5)
    )
    pq.write_table(fixed, tmp_path / "fixed.parquet")
    assert import_embeddings(project, tmp_path / "fixed.parquet").dim == 5


def _bad_parquet(tmp_path, name, **columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), tmp_path / name)
    return tmp_path / name, None


def _bad_npy(tmp_path, name, array, paths):
    np.save(tmp_path / name, array)
    if paths is None:
        return tmp_path / name, None
    (tmp_path / f"{name}.txt").write_text("\n".join(paths) + "\n")
    return tmp_path / name, tmp_path / f"{name}.txt"


P = [f"img-{k:04d}.png" for k in range(3)]
BAD = {
    "row count": (lambda t: _bad_npy(t, "a.npy", np.ones((2, 4)), P), "has 2 rows but"),
    "1-D": (lambda t: _bad_npy(t, "b.npy", np.ones(4), P), "expected a 2-D array"),
    "no paths file": (lambda t: _bad_npy(t, "c.npy", np.ones((3, 4)), None), "needs a paths file"),
    "NaN": (lambda t: _bad_npy(t, "d.npy", np.array([[1, 0], [np.nan, 1], [1, 1]]), P), "row 1 (img-0001.png) has NaN"),
    "zeros": (lambda t: _bad_npy(t, "e.npy", np.array([[1, 0], [0, 0], [1, 1]]), P), "all zeros"),
    "text": (lambda t: _bad_npy(t, "f.npy", np.array([["a", "b"]] * 3), P), "expected numbers"),
    "duplicate": (lambda t: _bad_npy(t, "g.npy", np.eye(3), [P[0], P[1], "./" + P[0]]), "appears twice"),
    "no match": (lambda t: _bad_npy(t, "h.npy", np.eye(3), ["x.png", "y.png", "z.png"]), "none of its 3 paths"),
    "suffix": (lambda t: ((t / "v.csv").write_text("1,2\n"), (t / "v.csv", None))[1], "expected a .npy"),
    "not npy": (lambda t: ((t / "v.npy").write_text("hello"), (t / "v.npy", t / "v.npy"))[1], "not a readable .npy"),
    "columns": (lambda t: _bad_parquet(t, "a.parquet", file=P, vector=[[1.0]] * 3), "missing path, embedding"),
    "ragged": (
        lambda t: _bad_parquet(t, "b.parquet", path=P, embedding=[[1.0, 2.0], [1.0], [3.0, 1.0]]),
        "row 1 has 1",
    ),
    "not lists": (lambda t: _bad_parquet(t, "c.parquet", path=P, embedding=[1.0, 2.0, 3.0]), "lists of numbers"),
    "null path": (lambda t: _bad_parquet(t, "d.parquet", path=[P[0], None, P[2]], embedding=[[1.0]] * 3), "no path"),
    "missing": (lambda t: (t / "nothing.parquet", None), "not found"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_embedding_files_name_the_problem_and_change_nothing(tmp_path, project, case):
    make, message = BAD[case]
    before = store_state(project)
    file, paths = make(tmp_path)
    with pytest.raises(EmbeddingFileError, match=re.escape(message)):
        import_embeddings(project, file, paths)
    assert store_state(project) == before and workflow.current_embeddings(project) is None


def test_cli_embed_from_file(tmp_path, project, capsys):
    vectors = _vectors(project)
    np.save(tmp_path / "v.npy", np.stack(list(vectors.values())))
    (tmp_path / "v.txt").write_text("\n".join(vectors))
    root = str(project.root)
    assert main(["embed", root, "--from", str(tmp_path / "v.npy"), "--paths", str(tmp_path / "v.txt")]) == 0
    assert "12 image(s) x 6 dimensions from v.npy" in capsys.readouterr().out
    _check_current(project, vectors)
    assert main(["embed", root, "--from", str(tmp_path / "v.npy")]) == 1
    assert "needs a paths file" in capsys.readouterr().err
    assert main(["embed", root, "--paths", str(tmp_path / "v.txt")]) == 1
    assert "--paths goes with --from" in capsys.readouterr().err


@pytest.mark.slow
def test_imported_embeddings_feed_the_map_and_propagation(tmp_path):
    from tests.exchange.conftest import make_project

    project = make_project(tmp_path / "images", per_class=12)
    vectors = _vectors(project, dim=8)
    np.save(tmp_path / "v.npy", np.stack(list(vectors.values())))
    (tmp_path / "v.txt").write_text("\n".join(vectors))
    import_embeddings(project, tmp_path / "v.npy", tmp_path / "v.txt")
    workflow.make_map(project, k=5)
    assert project.run(workflow.current_map(project).run_id).params["embed_run"] == project.latest_run("embed").id
    ids = {item.path: item.id for item in project.items()}
    seeds = {}
    for path, cls in sorted(project.truth.items()):
        if list(seeds.values()).count(cls) < 1:
            seeds[path] = cls
    classes = project.ensure_classes(seeds.values())
    project.set_labels_many({ids[p]: (classes[c], "seed") for p, c in seeds.items()}, "seeds")
    result = workflow.propagate(project)
    names = {c.id: c.name for c in project.classes()}
    paths = project.paths_by_id()
    correct = sum(names[int(c)] == project.truth[paths[int(i)]] for i, c in zip(result.item_ids, result.class_ids))
    assert correct == len(vectors)
    project.close()
