"""Graph label propagation, confidence and what to label next."""

from explorer.labels.propagate import Propagation, propagate
from explorer.labels.suggest import suggest

__all__ = ["Propagation", "propagate", "suggest"]
