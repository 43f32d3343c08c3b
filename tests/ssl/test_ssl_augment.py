import numpy as np
import pytest
import torch

from explorer.ssl.augment import (
    MEAN,
    STD,
    AugmentRecipe,
    augment,
    augment_unit,
    is_grayscale,
    normalise,
    recipe_for,
    to_batch,
)


def batch(b: int = 8, s: int = 16) -> torch.Tensor:
    return torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("recipe", [recipe_for(16), recipe_for(96), recipe_for(16, grayscale=True)])
def test_augment_shape_dtype_and_range(recipe):
    s = 96 if recipe.blur_p else 16
    x = batch(8, s)
    out = augment(x, recipe, torch.Generator().manual_seed(0))
    assert out.shape == (8, 3, s, s) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    lo = (0 - 0.485) / 0.229
    hi = (1 - 0.406) / 0.225
    assert out.min() >= lo - 1e-4 and out.max() <= hi + 1e-4


def test_augment_is_deterministic_with_a_seed_and_varies_without():
    x = batch()
    recipe = AugmentRecipe(blur_p=0.5)
    a = augment(x, recipe, torch.Generator().manual_seed(3))
    b = augment(x, recipe, torch.Generator().manual_seed(3))
    c = augment(x, recipe, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_identity_recipe_gives_normalised_input():
    x = batch()
    still = AugmentRecipe(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0, jitter_p=0, grayscale_p=0)
    assert torch.allclose(augment(x, still), normalise(x), atol=1e-4)


def test_flip_only_mirrors():
    x = batch()
    flip = AugmentRecipe(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=1, jitter_p=0, grayscale_p=0)
    assert torch.allclose(augment(x, flip), normalise(x.flip(-1)), atol=1e-4)


STILL = dict(crop_ratio=(1.0, 1.0), flip_p=0, jitter_p=0, grayscale_p=0)


def _bar() -> torch.Tensor:
    """One 32 px image: a white vertical bar on black, uint8 (1, 3, 32, 32)."""
    x = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    x[:, :, 4:28, 14:18] = 255
    return x


def test_a_crop_scale_above_one_zooms_out():
    out = augment_unit(_bar(), AugmentRecipe(crop_scale=(4.0, 4.0), **STILL))  # the image at half its side
    assert out[0, 0, :, :8].max() == 0 and out[0, 0, :, 24:].max() == 0  # border (black) around it
    assert out[0, 0, 10:22, 15:17].min() > 0.9  # the bar, half as long, in the middle


def test_rotation_turns_and_elastic_bends_the_image():
    bar = _bar()
    turned = augment_unit(
        bar, AugmentRecipe(crop_scale=(1.0, 1.0), rotation=90.0, **STILL), torch.Generator().manual_seed(3)
    )
    rows, cols = (turned[0, 0] > 0.5).nonzero(as_tuple=True)
    r, c = rows.float() - rows.float().mean(), cols.float() - cols.float().mean()
    axis = 0.5 * torch.atan2(2 * (r * c).mean(), (c * c).mean() - (r * r).mean())  # the bar's long axis
    assert abs(abs(float(torch.rad2deg(axis))) - 90) > 10  # no longer vertical
    assert abs(int(rows.numel()) - int((bar[0, 0] > 127).sum())) < 0.3 * int((bar[0, 0] > 127).sum())
    bent = augment_unit(
        bar, AugmentRecipe(crop_scale=(1.0, 1.0), elastic=0.3, **STILL), torch.Generator().manual_seed(0)
    )
    still = augment_unit(bar, AugmentRecipe(crop_scale=(1.0, 1.0), **STILL))
    assert torch.allclose(still, bar.float() / 255, atol=1e-4)
    assert (bent - still).abs().max() > 0.5  # strokes moved by pixels
    assert abs(float(bent.mean() - still.mean())) < 0.05  # bent, not erased


def test_grayscale_recipe_keeps_grey_images_grey():
    grey = batch()[:, :1].expand(-1, 3, -1, -1).contiguous()
    out = augment(grey, recipe_for(16, grayscale=True), torch.Generator().manual_seed(0))
    std, mean = torch.tensor(STD).view(1, 3, 1, 1), torch.tensor(MEAN).view(1, 3, 1, 1)
    raw = out * std + mean
    assert torch.allclose(raw[:, 0], raw[:, 1], atol=1e-4) and torch.allclose(raw[:, 1], raw[:, 2], atol=1e-4)


def test_recipe_adapts_to_size_and_colour():
    assert recipe_for(32).blur_p == 0 and recipe_for(224).blur_p > 0
    assert recipe_for(32).crop_scale[0] > recipe_for(224).crop_scale[0]
    assert recipe_for(32, grayscale=True).saturation == 0
    # small colour images: colour is mostly a nuisance there (benchmarks/encoder_recipe.py)
    assert recipe_for(32).grayscale_p > recipe_for(224).grayscale_p and recipe_for(32).hue > recipe_for(224).hue
    assert recipe_for(32, grayscale=True).flip_p == 0 and recipe_for(32).flip_p > 0  # handedness of digits, text
    assert recipe_for(32, grayscale=True).crop_scale[0] >= 0.5
    small_grey = recipe_for(32, grayscale=True)  # drawn things: turned, slanted and bent, not cut
    assert small_grey.rotation > 0 and small_grey.elastic > 0 and small_grey.crop_scale[1] > 1
    assert recipe_for(32).rotation == 0 and recipe_for(224, grayscale=True).elastic == 0


def test_helpers_check_their_input():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    assert not is_grayscale(rgb)
    assert is_grayscale(np.repeat(rgb[..., :1], 3, axis=-1))
    assert to_batch(rgb).shape == (4, 3, 8, 8)
    with pytest.raises(ValueError, match="uint8"):
        to_batch(rgb.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        augment(torch.zeros(2, 3, 8, 8), AugmentRecipe())
