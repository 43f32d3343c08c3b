import math

import pytest
import torch

from explorer.ssl.backbones import make_backbone
from explorer.ssl.methods import METHODS, make_method
from explorer.ssl.methods.byol import BYOL, byol_loss
from explorer.ssl.methods.simclr import nt_xent


def slow_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """SimCLR eq. 1 with explicit loops over the 2B anchors."""
    z = torch.cat([z1, z2]).double()
    n = len(z)
    b = n // 2

    def sim(i: int, j: int) -> float:
        return float(z[i] @ z[j] / (z[i].norm() * z[j].norm()))

    total = 0.0
    for i in range(n):
        j = (i + b) % n
        denominator = sum(math.exp(sim(i, k) / t) for k in range(n) if k != i)
        total += -math.log(math.exp(sim(i, j) / t) / denominator)
    return total / n


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_loop_reference(temperature):
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    assert float(nt_xent(z1, z2, temperature)) == pytest.approx(slow_nt_xent(z1, z2, temperature), rel=1e-5)


def test_nt_xent_is_low_for_matching_pairs_and_rejects_bad_shapes():
    z = torch.eye(4)
    assert float(nt_xent(z, z, 0.1)) < float(nt_xent(z, z.roll(1, dims=0), 0.1))
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(torch.zeros(4, 3), torch.zeros(5, 3), 0.1)


def test_byol_loss_matches_loop_reference():
    g = torch.Generator().manual_seed(2)
    p, z = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    expected = sum(2 - 2 * float(p[i] @ z[i] / (p[i].norm() * z[i].norm())) for i in range(5)) / 5
    assert float(byol_loss(p, z)) == pytest.approx(expected, rel=1e-5)


def test_registry_and_unknown_method():
    assert set(METHODS) >= {"simclr", "byol"}
    backbone, dim = make_backbone("small-cnn", 16)
    method = make_method("simclr", backbone, dim)
    assert (
        method.encoder is backbone
        and len(method.make_views(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), method.recipe(16, False))) == 2
    )
    with pytest.raises(ValueError, match="simclr"):
        make_method("swav", backbone, dim)


def test_byol_target_follows_online_after_step():
    backbone, dim = make_backbone("small-cnn", 16)
    method = BYOL(backbone, dim, base_momentum=0.5)
    assert all(not p.requires_grad for p in method.target_encoder.parameters())
    assert not any(p is q for p in method.trainable_parameters() for q in method.target_encoder.parameters())
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in method.target_encoder.parameters()]
    method.after_step(0.0)  # momentum 0.5: halfway to the online weights
    for old, new, online in zip(before, method.target_encoder.parameters(), method.encoder.parameters(), strict=True):
        assert torch.allclose(new, (old + online) / 2, atol=1e-6)


def test_contrastive_losses_stay_float32_under_bf16_autocast():
    """The CPU trains under bf16 autocast where it can: the logits must not round to bf16."""
    from explorer.ssl.methods.moco import moco_loss
    from explorer.ssl.methods.simclr import nt_xent

    g = torch.Generator().manual_seed(0)
    z1, z2, queue = torch.randn(32, 16, generator=g), torch.randn(32, 16, generator=g), torch.randn(64, 16, generator=g)
    exact = nt_xent(z1, z2, 0.2), moco_loss(z1, z2, queue, 0.2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = nt_xent(z1, z2, 0.2), moco_loss(z1, z2, queue, 0.2)
    for a, b in zip(exact, mixed, strict=True):
        assert b.dtype == torch.float32
        assert abs(float(a) - float(b)) < 1e-5
