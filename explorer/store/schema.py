"""SQLite schema of a project. Bump ``SCHEMA_VERSION`` and add a migration when it changes."""

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per image file ever seen. A file that disappears is marked missing, not deleted,
-- so that its labels come back if the file does.
CREATE TABLE IF NOT EXISTS items (
    id       INTEGER PRIMARY KEY,
    path     TEXT NOT NULL UNIQUE,      -- relative to the collection root, forward slashes
    bytes    INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    width    INTEGER,
    height   INTEGER,
    mode     TEXT,                      -- PIL mode of the decoded file
    error    TEXT,                      -- why it could not be read; NULL when readable
    present  INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS classes (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    colour   TEXT NOT NULL,             -- '#rrggbb'
    position INTEGER NOT NULL           -- order in the window; keys 1-9 follow it
);

-- Labels a person stands behind: seed, accepted, imported. One per item.
CREATE TABLE IF NOT EXISTS labels (
    item_id  INTEGER PRIMARY KEY REFERENCES items(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    source   TEXT NOT NULL CHECK (source IN ('seed', 'accepted', 'imported')),
    set_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_by_class ON labels(class_id);

-- "Not this class": a rejected pseudo-label is evidence for propagation.
CREATE TABLE IF NOT EXISTS rejections (
    item_id  INTEGER NOT NULL REFERENCES items(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    PRIMARY KEY (item_id, class_id)
);

-- The latest propagation result, replaced whole by each propagation.
CREATE TABLE IF NOT EXISTS pseudo_labels (
    item_id    INTEGER PRIMARY KEY REFERENCES items(id),
    class_id   INTEGER NOT NULL REFERENCES classes(id),
    confidence REAL NOT NULL
);

-- Undo history: one event per user action, with the label changes it made.
CREATE TABLE IF NOT EXISTS events (
    id     INTEGER PRIMARY KEY,
    at     REAL NOT NULL,
    action TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS event_changes (
    event_id   INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    item_id    INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('label', 'rejection')),
    -- kind 'label': the human label before and after (NULL class = none).
    -- kind 'rejection': old_class NULL and new_class C = rejection of C added.
    old_class  INTEGER,
    old_source TEXT,
    new_class  INTEGER,
    new_source TEXT
);
CREATE INDEX IF NOT EXISTS changes_by_event ON event_changes(event_id);
-- An item's label history (shown on every click) without reading every change ever made;
-- added after version 1 without a bump: CREATE IF NOT EXISTS adds it to old projects on open.
CREATE INDEX IF NOT EXISTS changes_by_item ON event_changes(item_id);
-- Classes an event removed (a merge or a delete), so that undo brings them back as they were.
-- Added after version 1 without a version bump: CREATE IF NOT EXISTS adds them to old projects.
CREATE TABLE IF NOT EXISTS event_classes (
    event_id    INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    class_id    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    colour      TEXT NOT NULL,
    position    INTEGER NOT NULL,
    merged_into INTEGER            -- the merge target; NULL when the class was deleted
);
CREATE INDEX IF NOT EXISTS classes_by_event ON event_classes(event_id);
-- The pseudo-labels of those classes at that moment (derived data, but undo shows them at once).
CREATE TABLE IF NOT EXISTS event_pseudo_labels (
    event_id   INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    item_id    INTEGER NOT NULL,
    class_id   INTEGER NOT NULL,
    confidence REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pseudo_by_event ON event_pseudo_labels(event_id);

-- Training, embedding, map and propagation runs with their parameters and results.
CREATE TABLE IF NOT EXISTS runs (
    id       INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,
    params   TEXT NOT NULL,   -- JSON
    metrics  TEXT NOT NULL DEFAULT '{}',
    status   TEXT NOT NULL DEFAULT 'running',  -- running, done, cancelled, failed
    started  REAL NOT NULL,
    finished REAL
);
"""
