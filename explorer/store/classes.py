"""Classes: adding, renaming, recolouring, reordering; merging and deleting as undoable events."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from explorer.store.database import ProjectError
from explorer.store.labels import HUMAN_SOURCES, Labels

# Colour-blind-friendly first (Okabe-Ito), then Tableau 20 for many classes, reordered so that
# the first twelve stay far apart (Tableau's blue and orange are next to Okabe-Ito's: a 10-class
# collection once got two classes in the same blue).
PALETTE = (
    "#e69f00 #56b4e9 #009e73 #f0e442 #0072b2 #d55e00 #cc79a7 #000000 #9467bd #8c564b #ff9896 #98df8a "
    "#d62728 #17becf #bcbd22 #1f77b4 #ff7f0e #2ca02c #e377c2 #7f7f7f "
    "#aec7e8 #ffbb78 #c5b0d5 #c49c94 #f7b6d2 #c7c7c7 #dbdb8d #9edae5"
).split()


@dataclass(frozen=True)
class LabelClass:
    id: int
    name: str
    colour: str
    position: int


@dataclass(frozen=True)
class ClassUsage:
    """What a merge or a delete of ``label`` would touch, for the confirmation shown first."""

    label: LabelClass
    human: dict[str, int]  # source (seed, accepted, imported) -> human labels of the class
    pseudo: int  # pseudo-labels of the class shown now (no human label, not rejected)
    rejections: int  # items a person said "not this class" to

    @property
    def human_total(self) -> int:
        return sum(self.human.values())


class Classes(Labels):
    """The classes a person labels with; a merge or delete keeps what it removed for undo."""

    def classes(self) -> list[LabelClass]:
        return [
            LabelClass(*r) for r in self._query("SELECT id, name, colour, position FROM classes ORDER BY position, id")
        ]

    def class_by_name(self, name: str) -> LabelClass | None:
        rows = self._query("SELECT id, name, colour, position FROM classes WHERE name = ?", (name,))
        return LabelClass(*rows[0]) if rows else None

    def add_class(self, name: str, colour: str | None = None) -> LabelClass:
        """A new class, or the existing one of that name."""
        name = name.strip()
        if not name:
            raise ProjectError("a class needs a name")
        existing = self.class_by_name(name)
        if existing:
            return existing
        with self.transaction() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM classes").fetchone()
            used = {c for (c,) in db.execute("SELECT colour FROM classes")}
            colour = colour or next((c for c in PALETTE if c not in used), PALETTE[count % len(PALETTE)])
            # An explicit id, never one a removed class may take back on undo.
            class_id = self._next_class_id(db)
            db.execute(
                "INSERT INTO classes(id, name, colour, position) VALUES (?, ?, ?, ?)", (class_id, name, colour, count)
            )
            return LabelClass(class_id, name, colour, count)

    def ensure_classes(self, names: Iterable[str]) -> dict[str, int]:
        """name -> class id, adding the missing classes (sorted by name for stable colours)."""
        return {n: self.add_class(n).id for n in sorted(set(names))}

    # ---- managing classes: rename, recolour, reorder (plain edits); merge, delete (undoable) --
    def rename_class(self, class_id: int, name: str) -> LabelClass:
        """Give a class a new, unique name (``merge_classes`` joins two classes)."""
        name = name.strip()
        if not name:
            raise ProjectError("a class needs a name")
        with self.transaction() as db:
            label = self._class_row(db, class_id)
            if db.execute("SELECT 1 FROM classes WHERE name = ? AND id != ?", (name, label.id)).fetchone():
                raise ProjectError(
                    f"a class named {name!r} already exists: pick another name, or merge {label.name!r} into it"
                )
            db.execute("UPDATE classes SET name = ? WHERE id = ?", (name, label.id))
            return LabelClass(label.id, name, label.colour, label.position)

    def recolour_class(self, class_id: int, colour: str) -> LabelClass:
        """Give a class the colour ``colour`` ('#rrggbb')."""
        text = str(colour).strip().lower()
        if len(text) != 7 or text[0] != "#" or any(ch not in "0123456789abcdef" for ch in text[1:]):
            raise ProjectError(f"a class colour is written #rrggbb, got {colour!r}")
        with self.transaction() as db:
            label = self._class_row(db, class_id)
            db.execute("UPDATE classes SET colour = ? WHERE id = ?", (text, label.id))
            return LabelClass(label.id, label.name, text, label.position)

    def move_class(self, class_id: int, position: int) -> LabelClass:
        """Put a class at ``position`` (0-based, clamped) of the order that number keys 1-9 follow."""
        with self.transaction() as db:
            label = self._class_row(db, class_id)
            order = [i for (i,) in db.execute("SELECT id FROM classes ORDER BY position, id") if i != label.id]
            position = max(0, min(int(position), len(order)))
            order.insert(position, label.id)
            self._renumber(db, order)
            return LabelClass(label.id, label.name, label.colour, position)

    def class_usage(self, class_id: int) -> ClassUsage:
        """Counts of what merging or deleting the class would change (see ``ClassUsage``)."""
        with self._reading() as db:
            label = self._class_row(db, class_id)
            human = dict(
                db.execute("SELECT source, COUNT(*) FROM labels WHERE class_id = ? GROUP BY source", (label.id,))
            )
            (pseudo,) = db.execute(
                "SELECT COUNT(*) FROM pseudo_labels p JOIN items i ON i.id = p.item_id "
                "WHERE p.class_id = ? AND i.present = 1 AND i.error IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = p.item_id) "
                "AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.item_id = p.item_id AND r.class_id = p.class_id)",
                (label.id,),
            ).fetchone()
            (rejections,) = db.execute("SELECT COUNT(*) FROM rejections WHERE class_id = ?", (label.id,)).fetchone()
        return ClassUsage(label, {s: int(human.get(s, 0)) for s in HUMAN_SOURCES}, int(pseudo), int(rejections))

    def merge_classes(self, sources: Iterable[int], target: int) -> int:
        """Fold the ``sources`` classes into ``target`` as one undoable event; returns its id.

        Human labels keep their source (seed, accepted, imported) and pseudo-labels their
        confidence, under the target class. Rejections of a source are dropped, not moved: "not
        a kitten" does not say "not a cat", and a wrong rejection would hide a right pseudo-label
        for good, while a dropped one only lets a pseudo-label be shown again. The source classes
        are removed; undo brings them back with their labels, rejections and pseudo-labels.
        """
        sources = list(dict.fromkeys(int(s) for s in sources))
        if not sources:
            raise ProjectError("pick at least one class to merge")
        if int(target) in sources:
            raise ProjectError("cannot merge a class into itself")
        with self.transaction() as db:
            into = self._class_row(db, target)
            merged = [self._class_row(db, s) for s in sources]
            event = self._new_event(db, f"merge {', '.join(repr(c.name) for c in merged)} into {into.name!r}")
            # Last first: each keeps the position it had, which undo restores first to last.
            for label in sorted(merged, key=lambda c: (c.position, c.id), reverse=True):
                self._remove_class(db, event, label, into.id)
            return event

    def delete_class(self, class_id: int) -> int:
        """Remove a class as one undoable event; returns its id. Its human labels are cleared,
        its rejections and pseudo-labels dropped; undo brings the class (name, colour, position)
        back with all of them."""
        with self.transaction() as db:
            label = self._class_row(db, class_id)
            event = self._new_event(db, f"delete class {label.name!r}")
            self._remove_class(db, event, label, None)
            return event

    @staticmethod
    def _class_row(db: sqlite3.Connection, class_id: int) -> LabelClass:
        row = db.execute("SELECT id, name, colour, position FROM classes WHERE id = ?", (int(class_id),)).fetchone()
        if row is None:
            raise ProjectError(f"no class with id {class_id} (deleted meanwhile?)")
        return LabelClass(*row)

    @staticmethod
    def _next_class_id(db: sqlite3.Connection) -> int:
        (top,) = db.execute(
            "SELECT MAX(id) FROM (SELECT id FROM classes UNION ALL SELECT class_id FROM event_classes)"
        ).fetchone()
        return (top or 0) + 1

    @staticmethod
    def _renumber(db: sqlite3.Connection, order: Sequence[int]) -> None:
        db.executemany("UPDATE classes SET position = ? WHERE id = ?", [(k, i) for k, i in enumerate(order)])

    def _remove_class(self, db: sqlite3.Connection, event: int, label: LabelClass, into: int | None) -> None:
        """Inside ``event``: move (``into`` a class) or clear the human labels of ``label``, drop
        its rejections, then remove the class (recorded for undo)."""
        labels = db.execute("SELECT item_id, source FROM labels WHERE class_id = ?", (label.id,)).fetchall()
        rejected = db.execute("SELECT item_id FROM rejections WHERE class_id = ?", (label.id,)).fetchall()
        changes = [(i, "label", label.id, s, into, s if into is not None else None) for i, s in labels]
        changes += [(i, "rejection", label.id, None, None, None) for (i,) in rejected]
        self._record(db, event, changes)
        self._drop_class(db, event, label.id, into)

    def _drop_class(self, db: sqlite3.Connection, event: int, class_id: int, into: int | None) -> None:
        """Remove a class no label points at any more, keeping it and its pseudo-labels under
        ``event`` for undo; its pseudo-labels move ``into`` a class or are dropped."""
        label = self._class_row(db, class_id)
        db.execute("DELETE FROM event_classes WHERE event_id = ? AND class_id = ?", (event, class_id))
        db.execute("DELETE FROM event_pseudo_labels WHERE event_id = ? AND class_id = ?", (event, class_id))
        db.execute(
            "INSERT INTO event_classes(event_id, class_id, name, colour, position, merged_into) VALUES (?, ?, ?, ?, ?, ?)",
            (event, class_id, label.name, label.colour, label.position, into),
        )
        db.execute(
            "INSERT INTO event_pseudo_labels(event_id, item_id, class_id, confidence) "
            "SELECT ?, item_id, class_id, confidence FROM pseudo_labels WHERE class_id = ?",
            (event, class_id),
        )
        if into is None:
            db.execute("DELETE FROM pseudo_labels WHERE class_id = ?", (class_id,))
        else:
            db.execute("UPDATE pseudo_labels SET class_id = ? WHERE class_id = ?", (into, class_id))
        try:
            db.execute("DELETE FROM classes WHERE id = ?", (class_id,))
        except sqlite3.IntegrityError as exc:
            raise ProjectError(f"class {label.name!r} still has labels ({exc}); nothing was changed") from None
        self._renumber(db, [i for (i,) in db.execute("SELECT id FROM classes ORDER BY position, id")])

    def _restore_classes(self, db: sqlite3.Connection, event: int) -> None:
        """Undo of a merge or delete, before its label changes are reversed: the classes come
        back at their positions (a name taken meanwhile gets ' (restored)'), then their pseudo-labels."""
        rows = db.execute(
            "SELECT class_id, name, colour, position FROM event_classes WHERE event_id = ? ORDER BY position",
            (event,),
        ).fetchall()
        for class_id, name, colour, position in rows:
            if db.execute("SELECT 1 FROM classes WHERE id = ?", (class_id,)).fetchone():
                raise ProjectError(f"cannot undo: class id {class_id} is in use again")
            free, k = name, 1
            while db.execute("SELECT 1 FROM classes WHERE name = ?", (free,)).fetchone():
                free, k = f"{name} (restored{f' {k}' if k > 1 else ''})", k + 1
            order = [i for (i,) in db.execute("SELECT id FROM classes ORDER BY position, id")]
            db.execute("INSERT INTO classes(id, name, colour, position) VALUES (?, ?, ?, -1)", (class_id, free, colour))
            order.insert(min(position, len(order)), class_id)
            self._renumber(db, order)
        if rows:
            db.execute(
                "INSERT OR REPLACE INTO pseudo_labels(item_id, class_id, confidence) "
                "SELECT item_id, class_id, confidence FROM event_pseudo_labels WHERE event_id = ?",
                (event,),
            )

    def _remove_classes_again(self, db: sqlite3.Connection, event: int) -> None:
        """Redo of a merge or delete, after its label changes were re-applied."""
        for class_id, into in db.execute(
            "SELECT class_id, merged_into FROM event_classes WHERE event_id = ? ORDER BY position DESC", (event,)
        ).fetchall():
            self._drop_class(db, event, class_id, into)
