import numpy as np
import pytest


@pytest.fixture
def tiny_images() -> np.ndarray:
    """(64, 16, 16, 3) uint8 random images."""
    return np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
