"""Filters: which images match a path pattern, labels, label sources, a confidence range, a size
in pixels and a file date, worked out in one vectorised pass over arrays.

    rule = Filter(path="cats/*", sources=("pseudo",), max_confidence=0.6)
    ids = find(project, rule)          # (n,) int64 item ids, ascending

The command line (``explorer find``, the filter flags of ``explorer export``), the window's
filter bar and ``Collection.select`` all build a ``Filter`` and call ``matching_ids``, so one
rule means the same everywhere. ``Filter.parse`` reads the command line's and the bar's text.

Paths are relative to the collection root with forward slashes:

- a glob matches the whole path (``cats/*``, ``*.png``, ``*/2023-*/*.jpg``; ``*`` also crosses
  folders, as in ``fnmatch``); text without ``*``, ``?`` or ``[`` matches every path that
  contains it (``cats/``: every image in a folder named ``...cats``);
- ``re:`` then a regular expression is searched anywhere in the path (``re:^(cats|dogs)/``,
  ``re:_\\d{4}\\.png$``).

Paths are matched with Arrow's compute kernels (RE2, in C++: ~0.02 s at 1M paths); a pattern
RE2 does not take (look-arounds, back-references) falls back to one compiled Python regex over
the strings (~0.2 s at 1M). Under RE2 ``\\d``, ``\\w`` and ``\\s`` are ASCII classes.

The file date is the modification time the last scan recorded (``items.mtime_ns``); naive dates
are local time. Unlabelled images have no confidence, so any confidence bound leaves them out.
"""

from __future__ import annotations

import fnmatch
import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import cached_property

import numpy as np

from explorer.store.ids import lookup_unsorted
from explorer.store.project import HUMAN_SOURCES, LabelClass, LabelTable, Project, ProjectError

UNLABELLED = "unlabelled"
SOURCES = (*HUMAN_SOURCES, "pseudo", UNLABELLED)
HUMAN = "human"  # any of HUMAN_SOURCES
REGEX_PREFIX = "re:"
_WILDCARDS = frozenset("*?[")


class FilterError(ProjectError, ValueError):
    """A filter that cannot be applied as written; the message names the value."""


@dataclass
class FileFacts:
    """What the scan recorded about every present, readable item, aligned by row, ascending ids."""

    item_ids: np.ndarray  # (N,) int64
    paths: list[str]  # N paths relative to the collection root
    width: np.ndarray  # (N,) int64 pixels, -1 where the scan recorded none
    height: np.ndarray  # (N,) int64 pixels, -1 where none
    mtime_ns: np.ndarray  # (N,) int64 modification time, ns since the epoch

    def __len__(self) -> int:
        return len(self.item_ids)

    @cached_property
    def arrow_paths(self):
        """The paths as one Arrow string array (built once: ~0.5 s at 1M paths)."""
        import pyarrow as pa

        return pa.array(self.paths, type=pa.large_string())


def read_file_facts(project: Project) -> FileFacts:
    """The ``FileFacts`` of ``project`` (one read of the items table)."""
    ids, paths, details = project.file_details()
    return FileFacts(ids, paths, details[:, 0].copy(), details[:, 1].copy(), details[:, 2].copy())


def _as_names(value, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise FilterError(f"{what} must be names (text), got {bad[0]!r}")
    return names


def _as_time(value, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return parse_date(value, what)
    raise FilterError(f"{what} must be a date, got {value!r}")


def _check_range(low, high, what: str, lowest: float = 0.0, highest: float | None = None) -> None:
    for value in (low, high):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise FilterError(f"{what} must be a number, got {value!r}")
        if not lowest <= value <= (highest if highest is not None else np.inf):
            allowed = f"between {lowest:g} and {highest:g}" if highest is not None else f"{lowest:g} or more"
            raise FilterError(f"{what} must be {allowed}, got {value:g}")
    if low is not None and high is not None and low > high:
        raise FilterError(f"{what}: the minimum {low:g} is above the maximum {high:g}")


@dataclass(frozen=True)
class Filter:
    """Which images to keep; every field is optional and those given must all hold.

    ``path``: a glob, or ``re:`` and a regular expression (see the module docstring);
    ``classes``: class names (the label the image shows: a person's, else its pseudo-label);
    ``sources``: seed, accepted, imported, pseudo, unlabelled (or ``human`` for the first three);
    ``min_confidence`` / ``max_confidence``: 0..1, inclusive (people's labels count as 1);
    ``min_width`` ... ``max_height``: pixels, inclusive; ``modified_after`` (inclusive) and
    ``modified_before`` (exclusive): the file's modification time, as datetimes, dates or ISO text.
    """

    path: str | None = None
    classes: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    min_width: int | None = None
    max_width: int | None = None
    min_height: int | None = None
    max_height: int | None = None
    modified_after: datetime | None = None
    modified_before: datetime | None = None
    _regex: re.Pattern | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        put("path", self.path or None)
        if self.path is not None and not isinstance(self.path, str):
            raise FilterError(f"a path pattern must be text, got {self.path!r}")
        if self.path is not None and self.path.startswith(REGEX_PREFIX):
            expression = self.path[len(REGEX_PREFIX) :]
            try:
                put("_regex", re.compile(expression))
            except re.error as exc:
                raise FilterError(f"invalid regular expression {expression!r}: {exc}") from None
        put("classes", _as_names(self.classes, "classes"))
        sources = _as_names(self.sources, "sources")
        if sources is not None:
            sources = tuple(UNLABELLED if s in ("", "none") else s.strip().lower() for s in sources)
            unknown = [s for s in sources if s not in (*SOURCES, HUMAN)]
            if unknown:
                raise FilterError(f"unknown label source {unknown[0]!r}; expected {', '.join((*SOURCES, HUMAN))}")
        put("sources", sources)
        _check_range(self.min_confidence, self.max_confidence, "confidence", 0.0, 1.0)
        _check_range(self.min_width, self.max_width, "width (pixels)")
        _check_range(self.min_height, self.max_height, "height (pixels)")
        after = _as_time(self.modified_after, "modified after")
        before = _as_time(self.modified_before, "modified before")
        if after is not None and before is not None and _ns(after) >= _ns(before):
            raise FilterError(f"modified after {_when(after)} is not before modified before {_when(before)}")
        put("modified_after", after)
        put("modified_before", before)

    @classmethod
    def parse(
        cls,
        path: str | None = None,
        classes: Iterable[str] | None = None,
        sources: str | Iterable[str] | None = None,
        confidence: str | None = None,
        size: str | None = None,
        modified_after: str | None = None,
        modified_before: str | None = None,
    ) -> Filter:
        """A filter from text as people type it (the command line's flags, the filter bar):
        ``sources`` comma-separated, ``confidence`` ``LO:HI``, ``size`` ``WxH[:WxH]``, dates ISO.
        Blank text means no condition."""
        if isinstance(sources, str):
            sources = [s for s in sources.split(",") if s.strip()] if sources.strip() else None
        low, high = parse_range(confidence) if confidence and confidence.strip() else (None, None)
        sizes = parse_size_range(size) if size and size.strip() else (None, None, None, None)
        return cls(
            path=path or None,
            classes=tuple(classes) if classes is not None else None,
            sources=tuple(s.strip() for s in sources) if sources is not None else None,
            min_confidence=low,
            max_confidence=high,
            min_width=sizes[0],
            min_height=sizes[1],
            max_width=sizes[2],
            max_height=sizes[3],
            modified_after=modified_after.strip() or None if modified_after else None,
            modified_before=modified_before.strip() or None if modified_before else None,
        )

    @property
    def active(self) -> bool:
        """Whether any condition is set (an empty filter keeps every image)."""
        return any(getattr(self, f.name) is not None for f in fields(self) if f.init)

    @property
    def reads_labels(self) -> bool:
        """Whether the result depends on the labels (and must be worked out again when they change)."""
        return self.classes is not None or self.sources is not None or self.confidence_bounded

    @property
    def confidence_bounded(self) -> bool:
        return self.min_confidence is not None or self.max_confidence is not None

    def describe(self) -> str:
        """A short line saying what the filter keeps ("every image" when it is empty)."""
        names = (("path", self.path and (self.path,)), ("label", self.classes), ("source", self.sources))
        parts = [f"{word} {', '.join(values) or '(none)'}" for word, values in names if values is not None]
        if self.confidence_bounded:
            parts.append(f"confidence {_bounds(self.min_confidence, self.max_confidence, '{:.2f}')}")
        for what, low, high in (
            ("width", self.min_width, self.max_width),
            ("height", self.min_height, self.max_height),
        ):
            if low is not None or high is not None:
                parts.append(f"{what} {_bounds(low, high, '{:d} px')}")
        if self.modified_after is not None or self.modified_before is not None:
            after = f"from {_when(self.modified_after)}" if self.modified_after else ""
            before = f"before {_when(self.modified_before)}" if self.modified_before else ""
            parts.append(" ".join(p for p in ("modified", after, before) if p))
        return " · ".join(parts) or "every image"


def _bounds(low, high, fmt: str) -> str:
    if low is not None and high is not None:
        return f"{fmt.format(low)}–{fmt.format(high)}"
    return f"≥ {fmt.format(low)}" if low is not None else f"≤ {fmt.format(high)}"


def _when(moment: datetime) -> str:
    """ISO date, with the time when it is not midnight."""
    return moment.isoformat(" ", "minutes") if moment.time() != datetime.min.time() else f"{moment:%Y-%m-%d}"


def _ns(moment: datetime) -> int:
    """Nanoseconds since the epoch (naive = local time), to the microsecond."""
    return round(moment.timestamp() * 1e6) * 1000


# ---- matching -------------------------------------------------------------------------------------
def matching_ids(rule: Filter, files: FileFacts, labels: LabelTable, classes: Sequence[LabelClass]) -> np.ndarray:
    """(n,) int64 ids of the items in ``files`` that ``rule`` keeps, ascending.

    ``labels`` gives each item's label (rows matched by item id: items missing from it count as
    unlabelled); ``classes`` resolves class names. Vectorised: one boolean mask per condition.
    Raises FilterError for class names the project does not have.
    """
    return files.item_ids[matching_mask(rule, files, labels, classes)]


def matching_mask(rule: Filter, files: FileFacts, labels: LabelTable, classes: Sequence[LabelClass]) -> np.ndarray:
    """(N,) bool over the rows of ``files``: which ``rule`` keeps (see ``matching_ids``)."""
    keep = np.ones(len(files), bool)
    if rule.min_width is not None:
        keep &= files.width >= rule.min_width
    if rule.max_width is not None:
        keep &= (files.width >= 0) & (files.width <= rule.max_width)
    if rule.min_height is not None:
        keep &= files.height >= rule.min_height
    if rule.max_height is not None:
        keep &= (files.height >= 0) & (files.height <= rule.max_height)
    if rule.modified_after is not None:
        keep &= files.mtime_ns >= _ns(rule.modified_after)
    if rule.modified_before is not None:
        keep &= files.mtime_ns < _ns(rule.modified_before)
    if rule.reads_labels:
        keep &= _label_mask(rule, files.item_ids, labels, classes)
    if rule.path is not None and keep.any():
        rows = None if keep.all() else np.flatnonzero(keep)  # only the paths still in question
        keep[slice(None) if rows is None else rows] = path_mask(rule, files, rows)
    return keep


def _aligned(labels: LabelTable, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class ids, sources, confidences) of ``item_ids`` read from ``labels`` (unlabelled when absent)."""
    if len(labels.item_ids) == len(item_ids) and np.array_equal(labels.item_ids, item_ids):
        return labels.class_ids, labels.source, labels.confidence
    cls = np.full(len(item_ids), -1, np.int64)
    src = np.full(len(item_ids), "", object)
    conf = np.full(len(item_ids), np.nan)
    rows, found = lookup_unsorted(labels.item_ids, item_ids)
    rows = rows[found]
    cls[found], src[found], conf[found] = labels.class_ids[rows], labels.source[rows], labels.confidence[rows]
    return cls, src, conf


def _label_mask(rule: Filter, item_ids: np.ndarray, labels: LabelTable, classes: Sequence[LabelClass]) -> np.ndarray:
    cls, src, conf = _aligned(labels, item_ids)
    keep = np.ones(len(item_ids), bool)
    if rule.classes is not None:
        by_name = {c.name: c.id for c in classes}
        unknown = [name for name in rule.classes if name not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name)[:12]) + (" ..." if len(by_name) > 12 else "")
            raise FilterError(f"no class named {unknown[0]!r} in this project; its classes: {known or '(none yet)'}")
        keep &= _one_of(cls, [by_name[name] for name in rule.classes])
    if rule.sources is not None:
        wanted = set(rule.sources) | (set(HUMAN_SOURCES) if HUMAN in rule.sources else set())
        keep &= _one_of(source_codes(src), [SOURCES.index(s) for s in wanted - {HUMAN}])
    if rule.min_confidence is not None:
        keep &= conf >= rule.min_confidence
    if rule.max_confidence is not None:
        keep &= conf <= rule.max_confidence
    return keep


def _one_of(values: np.ndarray, wanted: list[int]) -> np.ndarray:
    """(N,) bool: ``values`` in ``wanted`` (a few equalities: ``np.isin`` sorts, 30x slower at 1M)."""
    if len(wanted) > 16:
        return np.isin(values, np.asarray(wanted, values.dtype))
    out = np.zeros(len(values), bool)
    for value in wanted:
        out |= values == value
    return out


_codes_cache: tuple = (None, None)  # (weak reference to a source column, its codes)


def source_codes(source: np.ndarray) -> np.ndarray:
    """(N,) int8 position in ``SOURCES`` of each label source ('' = unlabelled), worked out once
    per label table column (string comparisons over 1M objects cost ~15 ms each)."""
    global _codes_cache
    ref, codes = _codes_cache
    if ref is not None and ref() is source:
        return codes
    codes = np.full(len(source), SOURCES.index(UNLABELLED), np.int8)
    for k, name in enumerate(SOURCES[:-1]):
        codes[source == name] = k
    try:
        _codes_cache = (weakref.ref(source), codes)
    except TypeError:  # not an array that takes weak references: not cached
        pass
    return codes


def path_mask(rule: Filter, files: FileFacts, rows: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: which of ``files.paths`` (or of those at ``rows``) the rule's path pattern
    matches; all when it has none."""
    n = len(files) if rows is None else len(rows)
    pattern = rule.path
    if pattern is None:
        return np.ones(n, bool)
    import pyarrow as pa
    import pyarrow.compute as pc

    paths = files.arrow_paths if rows is None else files.arrow_paths.take(pa.array(rows))
    if rule._regex is not None:
        expression, python = rule._regex.pattern, rule._regex.search
    elif not _WILDCARDS & set(pattern):
        return pc.match_substring(paths, pattern).to_numpy(zero_copy_only=False)
    else:
        expression, python = glob_regex(pattern), re.compile(fnmatch.translate(pattern)).match
    try:
        return pc.match_substring_regex(paths, expression).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # RE2 refuses it: Python's re, one pass over the strings
        strings = files.paths if rows is None else [files.paths[k] for k in rows.tolist()]
        return np.fromiter((python(p) is not None for p in strings), bool, count=n)


def glob_regex(pattern: str) -> str:
    """A regular expression, in the syntax RE2 and Python share, that is found in (searched, as
    Arrow's ``match_substring_regex`` does) exactly the paths ``fnmatch.fnmatchcase(path,
    pattern)`` accepts: anchored at each end unless the glob starts or ends with ``*``."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i + (i < n and pattern[i] == "!")
            j += j < n and pattern[j] == "]"
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal [
                out.append(r"\[")
                continue
            body, i = pattern[i:j], j + 1
            negate = body.startswith("!")
            body = body[1:] if negate else body
            body = body.replace("\\", r"\\").replace("[", r"\[").replace("]", r"\]").replace("^", r"\^")
            out.append(f"[{'^' if negate else ''}{body}]")
        else:
            out.append(re.escape(c))
    # searched, not matched: a leading or trailing ``.*`` only costs time (2x on ``*/x/*.png``)
    head = "^" if out[:1] != [".*"] else ""
    tail = "$" if out[-1:] != [".*"] else ""
    return "(?s)" + head + "".join(out[bool(not head) : len(out) - (not tail)]) + tail


def find(project: Project, rule: Filter) -> np.ndarray:
    """(n,) int64 ids of the present, readable items of ``project`` that ``rule`` keeps."""
    return matching_ids(rule, read_file_facts(project), project.label_table(), project.classes())


# ---- text as people type it ---------------------------------------------------------------------
def parse_range(text: str, what: str = "confidence") -> tuple[float | None, float | None]:
    """``"0.2:0.8"`` -> (0.2, 0.8); ``"0.9:"`` at least, ``":0.5"`` at most."""
    low, colon, high = text.strip().partition(":")
    if not colon:
        raise FilterError(f"{what} {text!r}: write LO:HI, LO: (at least) or :HI (at most), e.g. 0.2:0.8")
    try:
        values = [float(v) if v.strip() else None for v in (low, high)]
    except ValueError:
        raise FilterError(f"{what} {text!r}: expected numbers LO:HI, e.g. 0.2:0.8") from None
    if values == [None, None]:
        raise FilterError(f"{what} {text!r}: give at least one bound, e.g. 0.2:0.8")
    return values[0], values[1]


def parse_size(text: str) -> tuple[int | None, int | None]:
    """``"64x48"`` -> (64, 48) pixels (width, height); ``"64x"`` or ``"x48"`` leave one side
    free; a single number is a square (``"64"`` -> (64, 64))."""
    cleaned = text.strip().lower().replace("×", "x")
    parts = cleaned.split("x") if "x" in cleaned else [cleaned, cleaned]
    try:
        if len(parts) != 2 or parts == ["", ""]:
            raise ValueError
        width, height = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise FilterError(f"size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 64x64 (64x: width only)") from None
    if (width is not None and width < 0) or (height is not None and height < 0):
        raise FilterError(f"size {text!r}: pixels cannot be negative")
    return width, height


def parse_size_range(text: str) -> tuple[int | None, int | None, int | None, int | None]:
    """``"64x64"`` -> at least 64x64; ``"64x64:1024x768"`` between; ``":256x256"`` at most.
    Returns (min width, min height, max width, max height)."""
    low, _, high = text.strip().partition(":")
    smallest = parse_size(low) if low.strip() else (None, None)
    largest = parse_size(high) if high.strip() else (None, None)
    if smallest == largest == (None, None):
        raise FilterError(f"size {text!r}: expected WxH (at least), WxH:WxH or :WxH (at most), e.g. 64x64")
    return smallest[0], smallest[1], largest[0], largest[1]


def parse_date(text: str, what: str = "date") -> datetime:
    """An ISO date or date and time (``2024-01-31``, ``2024-01-31T12:30``), naive = local time."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise FilterError(f"{what}: {text!r} is not a date; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
