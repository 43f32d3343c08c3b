"""What every step shares: the error it raises when it cannot run, and how a run that stopped
early is recorded (its arrays never became current)."""

from __future__ import annotations

from explorer.jobs import Cancelled
from explorer.store import Project, ProjectError


class WorkflowError(ProjectError):
    """A step cannot run yet or got bad input; the message says what to do."""


def record_stop(project: Project, run: int, exc: BaseException) -> None:
    """Record why a run ended early; its arrays never became current."""
    if isinstance(exc, Cancelled | KeyboardInterrupt):
        project.finish_run(run, "cancelled")
    else:
        project.finish_run(run, "failed", {"error": str(exc)})
