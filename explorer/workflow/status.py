"""Status: what a project holds, in words."""

from __future__ import annotations

from explorer.store import HUMAN_SOURCES, Project


def status_text(project: Project) -> str:
    items = project.item_count(readable_only=False)  # a count, not a million Item objects
    unreadable = project.unreadable()
    counts = project.label_counts()
    lines = [
        f"collection: {project.root}",
        f"state:      {project.state_dir}",
        f"items:      {items} ({len(unreadable)} unreadable)",
        f"classes:    {', '.join(c.name for c in project.classes()) or '(none)'}",
        "labels:     "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in (*HUMAN_SOURCES, "pseudo"))
        + f", {counts.get('', 0)} unlabelled",
    ]
    for run in project.runs():
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in run.metrics.items() if not isinstance(v, dict | list))
        took = f"{_duration(run.finished - run.started):>7} " if run.finished is not None else ""
        lines.append(f"run {run.id:>3} {run.kind:<9} {run.status:<9} {took}{metrics}")
    for item in unreadable[:20]:
        lines.append(f"unreadable: {item.path}: {item.error}")
    if len(unreadable) > 20:
        lines.append(f"unreadable: ... and {len(unreadable) - 20} more")
    return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    """A run's wall time in words a person reads at a glance: 45s, 3m05s, 2h10m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
