"""Finding items in arrays of item ids (a run's ``item_ids``, the label table's, classes')."""

from __future__ import annotations

import numpy as np


def rows_in(sorted_or_not: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``sorted_or_not`` holding ``wanted`` ids, mask over ``wanted`` of those present)."""
    order = np.argsort(sorted_or_not, kind="stable")
    ids = np.asarray(sorted_or_not)[order]
    pos = np.minimum(np.searchsorted(ids, wanted), max(len(ids) - 1, 0))
    found = ids[pos] == wanted if len(ids) else np.zeros(len(wanted), bool)
    return order[pos[found]], found
