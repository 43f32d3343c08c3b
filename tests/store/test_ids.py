import numpy as np
import pytest

from explorer.store.ids import lookup, lookup_unsorted, pair_keys, split_pair_keys


def slow_lookup(ids, wanted):
    """The reference: a dict from id to its first row."""
    first = {}
    for row, i in enumerate(np.asarray(ids).tolist()):
        first.setdefault(i, row)
    rows = np.array([first.get(w, -1) for w in np.asarray(wanted).tolist()], np.int64)
    return rows, rows >= 0


CASES = [
    ([], []),
    ([], [1, 2]),
    ([5], []),
    ([5], [5, 4, 6]),
    ([1, 3, 7, 10], [0, 1, 2, 3, 7, 10, 11, -5]),
    ([2, 2, 4], [2, 4, 3]),  # a repeated id: its first row
]


@pytest.mark.parametrize(("ids", "wanted"), CASES)
def test_lookup_in_sorted_ids_matches_a_dict(ids, wanted):
    ids, wanted = np.array(ids, np.int64), np.array(wanted, np.int64)
    rows, found = lookup(ids, wanted)
    expected_rows, expected_found = slow_lookup(ids, wanted)
    assert rows.dtype == np.int64 and found.dtype == bool
    assert rows.shape == found.shape == wanted.shape
    np.testing.assert_array_equal(found, expected_found)
    np.testing.assert_array_equal(rows, expected_rows)


@pytest.mark.parametrize("seed", range(5))
def test_lookup_unsorted_matches_a_dict_on_random_ids(seed):
    rng = np.random.default_rng(seed)
    ids = rng.choice(1000, size=rng.integers(0, 300), replace=bool(seed % 2)).astype(np.int64)
    wanted = rng.integers(-10, 1010, size=rng.integers(0, 400))
    rows, found = lookup_unsorted(ids, wanted)
    expected_rows, expected_found = slow_lookup(ids, wanted)
    np.testing.assert_array_equal(found, expected_found)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(ids[rows[found]], wanted[found])
    # sorted input gives the same through both
    ascending = np.sort(ids)
    np.testing.assert_array_equal(lookup(ascending, wanted)[0], lookup_unsorted(ascending, wanted)[0])


def test_pair_keys_are_equal_only_for_equal_pairs_and_split_back():
    rng = np.random.default_rng(0)
    items = np.concatenate([rng.integers(0, 2**31 - 1, 500), [0, 2**31 - 1, 7, 7]])
    classes = np.concatenate([rng.integers(-1, 60, 500), [-1, 2**31 - 1, -1, 0]])
    keys = pair_keys(items, classes)
    pairs = list(zip(items.tolist(), classes.tolist(), strict=True))
    assert len(set(keys.tolist())) == len(set(pairs))
    by_key = dict(zip(keys.tolist(), pairs, strict=True))
    assert all(by_key[k] == p for k, p in zip(keys.tolist(), pairs, strict=True))
    back_items, back_classes = split_pair_keys(keys)
    np.testing.assert_array_equal(back_items, items)
    np.testing.assert_array_equal(back_classes, classes)


def test_pair_keys_of_empty_arrays_and_ids_too_large():
    assert pair_keys(np.empty(0), np.empty(0)).shape == (0,)
    assert [a.shape for a in split_pair_keys(np.empty(0, np.int64))] == [(0,), (0,)]
    with pytest.raises(ValueError, match="item ids must fit"):
        pair_keys([2**40], [1])
    with pytest.raises(ValueError, match="class ids must fit"):
        pair_keys([1], [-(2**31) - 1])
