"""The benchmark collections (benchmarks/collections): every one written at a smoke-test scale has matching files
and truth, every class, the documented image size and mode, and is reproducible from its seed."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.collections import COLLECTIONS, SUITE, Collection, glyphs, make, mnist, shapes, unbalanced
from benchmarks.collections.__main__ import main
from benchmarks.collections._common import read_truth

SCALE = 0.02
DIGITS = {str(d) for d in range(10)}
# name -> (class names, image size (width, height), PIL mode)
EXPECTED = {
    "mnist": (DIGITS, (28, 28), "L"),
    "handwriting": (DIGITS, (28, 28), "L"),
    "unbalanced": (DIGITS, (28, 28), "L"),
    "mnist-cluttered": (DIGITS, (48, 48), "RGB"),
    "glyphs": (set(glyphs.CHARACTERS), (32, 32), "L"),
    "shapes": (set(shapes.SHAPES), (40, 40), "RGB"),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Collection]:
    dest = tmp_path_factory.mktemp("collections")
    return {name: make(name, dest, scale=SCALE, seed=0) for name in SUITE}


def fingerprint(collection: Collection) -> tuple[list[tuple[str, str]], str]:
    """The truth rows and one hash over the bytes of every image file, in truth order."""
    rows = read_truth(collection.truth)
    digest = hashlib.sha256()
    for path, _ in rows:
        digest.update((collection.images / path).read_bytes())
    return rows, digest.hexdigest()


def test_the_suite_names_every_collection_once() -> None:
    assert set(SUITE) == set(COLLECTIONS) == set(EXPECTED)
    assert len(SUITE) == len(set(SUITE))
    assert SUITE[0] == "mnist"


def test_an_unknown_name_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown collection 'digits'.*handwriting"):
        make("digits", tmp_path)


@pytest.mark.parametrize("name", SUITE)
def test_files_and_truth_agree_and_every_class_is_there(written: dict[str, Collection], name: str) -> None:
    collection = written[name]
    classes, _, _ = EXPECTED[name]
    rows = read_truth(collection.truth)
    paths = [path for path, _ in rows]
    assert collection.name == name and collection.images == collection.truth.parent / "images"
    assert sorted(p.name for p in collection.images.iterdir()) == sorted(paths)
    assert all(path.startswith("img-") and path.endswith(".png") for path in paths)
    assert {label for _, label in rows} == classes
    assert collection.classes == len(classes)
    counts = {label: sum(1 for _, m in rows if m == label) for label in classes}
    assert min(counts.values()) >= 3


@pytest.mark.parametrize("name", SUITE)
def test_images_have_the_documented_size_and_mode_and_show_something(written: dict[str, Collection], name: str) -> None:
    collection = written[name]
    _, size, mode = EXPECTED[name]
    for path, _ in read_truth(collection.truth):
        with Image.open(collection.images / path) as image:
            assert (image.size, image.mode) == (size, mode), path
            pixels = np.asarray(image, dtype=float)
        assert pixels.std() > 10, f"{path} is nearly flat"


@pytest.mark.parametrize("name", SUITE)
def test_the_same_seed_writes_the_same_files_and_another_seed_others(
    written: dict[str, Collection], name: str, tmp_path: Path
) -> None:
    again = make(name, tmp_path / "again", scale=SCALE, seed=0)
    other = make(name, tmp_path / "other", scale=SCALE, seed=1)
    assert fingerprint(again) == fingerprint(written[name])
    rows, digest = fingerprint(other)
    assert digest != fingerprint(written[name])[1]
    assert rows != read_truth(written[name].truth)


def test_a_rewrite_leaves_no_stale_images(tmp_path: Path) -> None:
    make("shapes", tmp_path, scale=0.05)
    smaller = make("shapes", tmp_path, scale=0.01)
    assert len(list(smaller.images.iterdir())) == len(read_truth(smaller.truth)) == 50


def test_mnist_reads_the_5000_digits_with_labels_in_the_last_column() -> None:
    images, labels = mnist.digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    assert images.max() == 255 and images[:, 0, :].max() == 0  # ink inside, MNIST's empty top row


def test_unbalanced_class_sizes_run_from_1_to_20() -> None:
    sizes = unbalanced.class_sizes()
    assert len(sizes) == 10 and sizes == sorted(sizes)
    assert abs(sum(sizes) - 4000) <= 10
    assert 19 <= sizes[-1] / sizes[0] <= 21
    assert min(unbalanced.class_sizes(40)) == unbalanced.MINIMUM  # tiny scales keep every class


def test_unbalanced_holds_near_duplicates_of_its_own_class(written: dict[str, Collection]) -> None:
    collection = written["unbalanced"]
    label = dict(read_truth(collection.truth))
    with open(collection.truth.parent / "duplicates.csv", newline="") as f:
        pairs = [(row["path"], row["original"]) for row in csv.DictReader(f)]
    sizes = unbalanced.class_sizes(round(4000 * SCALE))
    assert len(pairs) == sum(round(unbalanced.SHARE * n) for n in sizes) > 0
    strangers = []
    for copy, original in pairs:
        assert copy != original and label[copy] == label[original]
        a, b = (np.asarray(Image.open(collection.images / p), dtype=float) for p in (copy, original))
        assert not np.array_equal(a, b)
        assert shifted_difference(a, b) < 12, (copy, original)
        stranger = next(p for p, m in label.items() if m != label[copy])
        strangers.append(shifted_difference(a, np.asarray(Image.open(collection.images / stranger), dtype=float)))
    assert np.median(strangers) > 25


def shifted_difference(a: np.ndarray, b: np.ndarray, reach: int = 2) -> float:
    """The smallest mean absolute difference of ``a`` and ``b`` over shifts of up to ``reach`` px (overlap only)."""
    h, w = a.shape
    best = np.inf
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            one = a[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
            two = b[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
            best = min(best, float(np.abs(one - two).mean()))
    return best


def test_the_command_writes_a_collection_and_its_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["shapes", str(tmp_path), "--scale", "0.01", "--seed", "3", "--sheet"])
    line = capsys.readouterr().out.split()
    assert line[:5] == ["shapes", "50", "items", "10", "classes"]
    with Image.open(tmp_path / "shapes" / "sheet.png") as sheet:
        assert sheet.size == (10 * (40 * 3 + 2), 10 * (40 * 3 + 2))
