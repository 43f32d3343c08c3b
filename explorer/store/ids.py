"""Finding ids in id arrays, and (item, class) pairs as one number, with array ops only.

Every table the project hands out is a set of arrays aligned by id; these are the two ways the
code base joins them, kept in one place so that the edge cases (an empty array, an id that is
not there, a class id of -1) are handled once.
"""

from __future__ import annotations

import numpy as np

_LOW = (1 << 32) - 1
_SIGN = 1 << 31


def lookup(sorted_ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``wanted`` (M,) stands in the ascending ``sorted_ids`` (N,).

    Returns ``(rows, found)``: (M,) int64 row positions, -1 where the id is absent, and an (M,)
    bool mask of the ids that are present. Take ``rows[found]`` for the present ones only.
    """
    sorted_ids = np.asarray(sorted_ids)
    wanted = np.asarray(wanted)
    if len(sorted_ids) == 0 or len(wanted) == 0:
        return np.full(len(wanted), -1, np.int64), np.zeros(len(wanted), bool)
    rows = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1).astype(np.int64, copy=False)
    found = sorted_ids[rows] == wanted
    rows[~found] = -1
    return rows, found


def lookup_unsorted(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``lookup`` for ``ids`` in any order (an argsort first, so sort once where you look up
    often). A repeated id gives the first row holding it."""
    ids = np.asarray(ids)
    order = np.argsort(ids, kind="stable")
    rows, found = lookup(ids[order], wanted)
    rows[found] = order[rows[found]]
    return rows, found


def rows_in(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``ids`` (any order) holding the present ones of ``wanted``, mask over ``wanted`` of
    those present): ``lookup_unsorted`` with the absent ones dropped, for joins that skip them."""
    rows, found = lookup_unsorted(ids, wanted)
    return rows[found], found


def pair_keys(items: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """One int64 per (item, class) pair, equal only for equal pairs, for ``np.isin`` and sets.

    Both ids must fit in 32 signed bits (class -1, "none", included); ``split_pair_keys`` is
    the inverse.
    """
    items, classes = np.asarray(items, np.int64), np.asarray(classes, np.int64)
    for name, values in (("item", items), ("class", classes)):
        if values.size and (values.min() < -_SIGN or values.max() >= _SIGN):
            raise ValueError(f"{name} ids must fit in 32 bits to be paired, got {values.min()}..{values.max()}")
    return (items << 32) | (classes & _LOW)


def split_pair_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(items, classes) int64 of keys made by ``pair_keys``."""
    keys = np.asarray(keys, np.int64)
    return keys >> 32, ((keys & _LOW) ^ _SIGN) - _SIGN  # the low 32 bits with their sign back
