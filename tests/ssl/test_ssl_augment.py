import numpy as np
import pytest
import torch

from explorer.ssl.augment import MEAN, STD, AugmentRecipe, augment, is_grayscale, normalise, recipe_for, to_batch


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
    assert recipe_for(32, grayscale=True).flip_p == 0 and recipe_for(32).flip_p > 0  # handedness of digits, text
    assert recipe_for(32, grayscale=True).crop_scale[0] >= 0.5


def test_helpers_check_their_input():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    assert not is_grayscale(rgb)
    assert is_grayscale(np.repeat(rgb[..., :1], 3, axis=-1))
    assert to_batch(rgb).shape == (4, 3, 8, 8)
    with pytest.raises(ValueError, match="uint8"):
        to_batch(rgb.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        augment(torch.zeros(2, 3, 8, 8), AugmentRecipe())
