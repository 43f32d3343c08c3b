"""Graph label propagation, confidence, pseudo-label rounds and what to label next."""

from explorer.labels.propagate import Diffusion, Propagation, propagate
from explorer.labels.rounds import pseudo_label_rounds
from explorer.labels.suggest import suggest

__all__ = ["Diffusion", "Propagation", "propagate", "pseudo_label_rounds", "suggest"]
