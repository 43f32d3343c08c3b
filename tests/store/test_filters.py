"""Filters over a fabricated project: each condition, combinations checked against a plain loop
over the same facts, and clear messages for input that cannot be applied."""

from __future__ import annotations

import fnmatch
import re
from datetime import date, datetime

import numpy as np
import pytest

from explorer.store import Project, ScannedFile
from explorer.store.filters import (
    FileFacts,
    Filter,
    FilterError,
    find,
    glob_regex,
    matching_ids,
    parse_date,
    parse_range,
    parse_size,
    parse_size_range,
    path_mask,
    read_file_facts,
)

DAY = 86_400 * 10**9
JAN_1 = int(datetime(2024, 1, 1).timestamp()) * 10**9  # local midnight, as the filter reads dates
FOLDERS = ("cats", "dogs", "cats/kittens", "misc")


@pytest.fixture
def fabricated(tmp_path):
    """48 items in 4 folders, sizes 16..128 px, one modified per day from 2024-01-01; classes
    cat and dog with labels of every source, one rejected pseudo-label, one unreadable file and
    one gone. ``.rows`` is the oracle: a dict per readable item with what a filter looks at."""
    root = tmp_path / "collection"
    root.mkdir()
    project = Project(root)
    scanned = []
    for k in range(48):
        folder = FOLDERS[k % 4]
        size = (16 * (1 + k % 8), 16 * (1 + (k // 8) % 6))
        scanned.append(ScannedFile(f"{folder}/img_{k:03d}.{'png' if k % 3 else 'jpg'}", 100, JAN_1 + k * DAY, *size))
    scanned.append(ScannedFile("misc/broken.png", 5, JAN_1, error="cannot identify image file"))
    scanned.append(ScannedFile("misc/gone.png", 5, JAN_1, 32, 32))
    project.record_scan(scanned, gone=[])
    project.record_scan([], gone=["misc/gone.png"])
    ids = {item.path: item.id for item in project.items()}
    cat, dog = project.add_class("cat").id, project.add_class("dog").id
    paths = sorted(ids)
    project.set_labels([ids[p] for p in paths[0:4]], cat, "seed")
    project.set_labels([ids[p] for p in paths[4:6]], dog, "seed")
    project.set_labels([ids[paths[6]]], dog, "accepted")
    project.set_labels([ids[paths[7]]], cat, "imported")
    pseudo = paths[8:40]
    confidence = np.linspace(0.1, 0.95, len(pseudo))
    classes = np.array([cat if k % 2 else dog for k in range(len(pseudo))])
    project.save_pseudo_labels(np.array([ids[p] for p in pseudo]), classes, confidence)
    project.reject_pseudo([ids[pseudo[0]]])  # its pseudo-label no longer shows: unlabelled
    table = project.label_table()
    names = {cat: "cat", dog: "dog"}
    by_id = {item.id: item for item in project.items()}
    project.rows = [
        {
            "id": int(i),
            "path": by_id[int(i)].path,
            "width": by_id[int(i)].width,
            "height": by_id[int(i)].height,
            "mtime_ns": by_id[int(i)].mtime_ns,
            "label": names.get(int(c)),
            "source": s or "unlabelled",
            "confidence": float(f),
        }
        for i, c, s, f in zip(table.item_ids, table.class_ids, table.source, table.confidence)
    ]
    yield project
    project.close()


def oracle(rows, rule: Filter) -> list[int]:
    """The ids ``rule`` should keep, one row at a time in plain Python."""
    kept = []
    for r in rows:
        p = rule.path
        if p is not None:
            if p.startswith("re:"):
                ok = re.search(p[3:], r["path"]) is not None
            elif set(p) & set("*?["):
                ok = fnmatch.fnmatchcase(r["path"], p)
            else:
                ok = p in r["path"]
            if not ok:
                continue
        if rule.classes is not None and r["label"] not in rule.classes:
            continue
        if rule.sources is not None:
            wanted = set(rule.sources) | ({"seed", "accepted", "imported"} if "human" in rule.sources else set())
            if r["source"] not in wanted:
                continue
        c = r["confidence"]
        if rule.min_confidence is not None and not c >= rule.min_confidence:
            continue
        if rule.max_confidence is not None and not c <= rule.max_confidence:
            continue
        if rule.min_width is not None and not r["width"] >= rule.min_width:
            continue
        if rule.max_width is not None and not r["width"] <= rule.max_width:
            continue
        if rule.min_height is not None and not r["height"] >= rule.min_height:
            continue
        if rule.max_height is not None and not r["height"] <= rule.max_height:
            continue
        if rule.modified_after is not None and r["mtime_ns"] < rule.modified_after.timestamp() * 1e9:
            continue
        if rule.modified_before is not None and r["mtime_ns"] >= rule.modified_before.timestamp() * 1e9:
            continue
        kept.append(r["id"])
    return kept


def ids_where(project, **condition) -> list[int]:
    return [r["id"] for r in project.rows if all(r[k] == v for k, v in condition.items())]


def test_each_condition_keeps_exactly_its_images(fabricated):
    p = fabricated
    assert len(p.rows) == 48  # the unreadable and the gone file are never in a filter
    got = lambda **kw: find(p, Filter(**kw)).tolist()  # noqa: E731
    assert got() == sorted(r["id"] for r in p.rows)
    assert got(path="dogs/*") == sorted(r["id"] for r in p.rows if r["path"].startswith("dogs/"))
    assert got(path="cats/*") == sorted(r["id"] for r in p.rows if r["path"].startswith("cats/"))  # kittens too
    assert got(path="*.jpg") == sorted(r["id"] for r in p.rows if r["path"].endswith(".jpg"))
    assert got(path="kittens") == sorted(r["id"] for r in p.rows if "kittens" in r["path"])
    assert got(path=r"re:^cats/img_0\d[02468]\.") == sorted(
        r["id"] for r in p.rows if re.match(r"cats/img_0\d[02468]\.", r["path"])
    )
    assert got(classes="cat") == ids_where(p, label="cat")
    assert got(classes=["cat", "dog"]) == sorted(ids_where(p, label="cat") + ids_where(p, label="dog"))
    assert len(got(sources="seed")) == 6 and len(got(sources=("accepted",))) == 1
    assert got(sources="human") == sorted(r["id"] for r in p.rows if r["source"] in ("seed", "accepted", "imported"))
    unlabelled = ids_where(p, source="unlabelled")
    assert len(unlabelled) == 48 - 8 - 31 and got(sources="unlabelled") == unlabelled == got(sources="")
    pseudo = [r for r in p.rows if r["source"] == "pseudo"]
    assert got(min_confidence=0.5, max_confidence=0.8) == [r["id"] for r in pseudo if 0.5 <= r["confidence"] <= 0.8]
    assert set(got(min_confidence=0.99)) == set(got(sources="human"))  # people's labels count as 1
    assert got(min_width=64, max_width=96) == sorted(r["id"] for r in p.rows if 64 <= r["width"] <= 96)
    assert got(max_height=32) == sorted(r["id"] for r in p.rows if r["height"] <= 32)
    # dates: after is inclusive, before exclusive, naive = local time; dates, datetimes and text alike
    assert len(got(modified_after="2024-01-11")) == 38 and len(got(modified_before=date(2024, 1, 11))) == 10
    assert got(modified_after=datetime(2024, 1, 3), modified_before="2024-01-05") == sorted(
        r["id"] for r in p.rows if JAN_1 + 2 * DAY <= r["mtime_ns"] < JAN_1 + 4 * DAY
    )


@pytest.mark.parametrize("seed", range(6))
def test_combinations_match_a_plain_loop(fabricated, seed):
    rng = np.random.default_rng(seed)
    files, labels, classes = read_file_facts(fabricated), fabricated.label_table(), fabricated.classes()
    choices = {
        "path": ["cats/*", "*.png", "*/img_01?.*", "dogs", "re:_0[0-2]", "[cd]*", "[!c]*", "re:(?<=s/)img_00"],
        "classes": [("cat",), ("dog",), ("cat", "dog")],
        "sources": [("pseudo",), ("seed", "unlabelled"), ("human",), ("accepted", "pseudo")],
        "min_confidence": [0.0, 0.3, 0.6],
        "max_confidence": [0.7, 0.9, 1.0],
        "min_width": [32, 64],
        "max_width": [96, 128],
        "min_height": [16, 48],
        "max_height": [64, 96],
        "modified_after": [datetime(2024, 1, 5), datetime(2024, 1, 20, 12)],
        "modified_before": [datetime(2024, 1, 30), datetime(2024, 2, 15)],
    }
    for _ in range(40):
        picked = rng.choice(list(choices), size=int(rng.integers(1, 4)), replace=False)
        rule = Filter(**{k: choices[k][int(rng.integers(len(choices[k])))] for k in picked})
        assert matching_ids(rule, files, labels, classes).tolist() == oracle(fabricated.rows, rule), rule.describe()


def test_labels_read_by_item_id_when_the_tables_differ(fabricated):
    """A label table read at another moment (an item more or less) is matched by id, not row."""
    files, labels, classes = read_file_facts(fabricated), fabricated.label_table(), fabricated.classes()
    want = matching_ids(Filter(sources="pseudo"), files, labels, classes)
    fewer = type(labels)(labels.item_ids[1:], labels.class_ids[1:], labels.source[1:], labels.confidence[1:])
    assert matching_ids(Filter(sources="pseudo"), files, fewer, classes).tolist() == want.tolist()
    assert files.item_ids[0] in matching_ids(Filter(sources="unlabelled"), files, fewer, classes)


def test_globs_match_as_fnmatch_does():
    paths = ["cats/a.png", "cats/b/c.jpg", "a[b]/c.png", "x]y.png", "we^ird/!a.png", "new\nline.png", "d-e/f.PNG"]
    n = len(paths)
    files = FileFacts(np.arange(n), paths, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64))
    for pattern in ("cats/*", "*.png", "[cd]*", "[!c]*", "a[[]b]/*", "[]]*", "x[]]y*", "[^w]*", "*[", "[z-a]*",
                    "*\n*", "d[-]e*", "*[!-]e/*", "?ats/*", "we^ird/[!]a.png"):  # fmt: skip
        want = [fnmatch.fnmatchcase(p, pattern) for p in paths]
        assert path_mask(Filter(path=pattern), files).tolist() == want, (pattern, glob_regex(pattern))
    # a look-behind is not RE2: Python's re takes it, with the same result
    assert path_mask(Filter(path="re:(?<=/)c"), files).tolist() == [False, True, True, False, False, False, False]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"path": "re:cats/("}, "invalid regular expression 'cats/\\('"),
        ({"sources": "pseudo-label"}, "unknown label source 'pseudo-label'"),
        ({"sources": ["seed", 3]}, "sources must be names"),
        ({"min_confidence": 0.8, "max_confidence": 0.2}, "minimum 0.8 is above the maximum 0.2"),
        ({"min_confidence": 1.5}, "between 0 and 1, got 1.5"),
        ({"min_width": 100, "max_width": 50}, "width .*minimum 100 is above the maximum 50"),
        ({"max_height": -3}, "height .*0 or more, got -3"),
        ({"modified_after": "2024-02-30"}, "'2024-02-30' is not a date"),
        ({"modified_after": "2024-03-01", "modified_before": "2024-01-01"}, "2024-03-01 is not before .*2024-01-01"),
    ],
)
def test_bad_input_is_refused_naming_the_value(settings, message):
    with pytest.raises(FilterError, match=message):
        Filter(**settings)


def test_an_unknown_class_names_it_and_the_classes(fabricated):
    with pytest.raises(FilterError, match=r"no class named 'cow'.*classes: cat, dog"):
        find(fabricated, Filter(classes=("cat", "cow")))
    assert isinstance(FilterError("x"), ValueError)  # the CLI and notebooks catch either


def test_text_as_people_type_it():
    assert (
        parse_range("0.2:0.8") == (0.2, 0.8)
        and parse_range("0.9:") == (0.9, None)
        and parse_range(":.5") == (None, 0.5)
    )
    for bad, message in (("0.5", "write LO:HI"), ("a:b", "expected numbers"), (":", "at least one bound")):
        with pytest.raises(FilterError, match=message):
            parse_range(bad)
    assert parse_size("64x48") == (64, 48) and parse_size("64X") == (64, None) and parse_size("x48") == (None, 48)
    assert parse_size("32") == (32, 32) and parse_size("10×20") == (10, 20)
    with pytest.raises(FilterError, match="size '64by64'"):
        parse_size("64by64")
    assert parse_size_range("64x64:512x256") == (64, 64, 512, 256) and parse_size_range(":256x256") == (
        None,
        None,
        256,
        256,
    )
    with pytest.raises(FilterError, match="size ':'"):
        parse_size_range(":")
    assert parse_date("2024-01-31T12:30") == datetime(2024, 1, 31, 12, 30)
    with pytest.raises(FilterError, match="'31/01/2024' is not a date"):
        parse_date("31/01/2024")

    rule = Filter.parse(path="cats/*", classes=["cat"], sources="pseudo, seed", confidence="0.2:0.8", size="64x:")
    assert rule == Filter(path="cats/*", classes=("cat",), sources=("pseudo", "seed"), min_confidence=0.2,
                          max_confidence=0.8, min_width=64)  # fmt: skip
    assert rule.describe() == "path cats/* · label cat · source pseudo, seed · confidence 0.20–0.80 · width ≥ 64 px"
    empty = Filter.parse(path="", sources="", confidence=" ", size="", modified_after="", modified_before=None)
    assert not empty.active and empty == Filter() and empty.describe() == "every image"
    assert Filter(min_width=1).active and not Filter(min_width=1).reads_labels and Filter(sources="seed").reads_labels
