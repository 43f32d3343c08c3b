import numpy as np
import pytest

from explorer.jobs import Cancelled, CancelToken, Progress
from explorer.ssl.checkpoint import CheckpointError
from explorer.ssl.encoder import load_encoder, untrained_encoder


def test_untrained_encoder_embeds_unit_rows_in_batches(tiny_images):
    encoder = untrained_encoder("small-cnn", 16, device="cpu")
    reports: list[Progress] = []
    out = encoder.embed(tiny_images[:10], batch_size=4, progress=reports.append)
    assert out.shape == (10, encoder.feature_dim) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert [r.done for r in reports] == [4, 8, 10] and reports[-1].step == "embed" and reports[-1].total == 10
    again = untrained_encoder("small-cnn", 16, device="cpu").embed(tiny_images[:10])
    assert np.allclose(out, again, atol=1e-5)  # same seed, same weights; batching does not matter


def test_embed_checks_images_and_cancel(tiny_images):
    encoder = untrained_encoder("small-cnn", 16, device="cpu")
    with pytest.raises(ValueError, match=r"\(N, 16, 16, 3\)"):
        encoder.embed(np.zeros((2, 8, 8, 3), np.uint8))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        encoder.embed(tiny_images, cancel=token)


def test_load_encoder_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_encoder(missing, device="cpu")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_encoder(garbage, device="cpu")
    import torch

    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="other.pt is not"):
        load_encoder(other, device="cpu")
    with pytest.raises(ValueError):  # CheckpointError is a ValueError for callers that catch those
        load_encoder(tmp_path, device="cpu")


def test_views_only_for_small_colour_images_and_fewer_for_big_collections_on_a_cpu():
    from explorer.ssl.encoder import VIEW_BUDGET_CPU, VIEWS, views_for

    assert views_for(32, False, 5_000, "cpu") == VIEWS
    assert views_for(32, True, 5_000, "cpu") == 1  # grayscale: nothing gained (handwriting, glyphs)
    assert views_for(96, False, 5_000, "cpu") == 1  # large images: not measured
    assert views_for(32, False, VIEW_BUDGET_CPU // 3, "cpu") == 3
    assert views_for(32, False, 10 * VIEW_BUDGET_CPU, "cpu") == 1
    assert views_for(32, False, 10 * VIEW_BUDGET_CPU, "cuda") == VIEWS


def test_same_for_all_gives_every_image_the_same_view(tiny_images):
    import torch

    from explorer.ssl.augment import SameForAll, augment, recipe_for, to_batch

    same = to_batch(np.repeat(tiny_images[:1], 6, axis=0))
    recipe = recipe_for(16, grayscale=False)
    shared = augment(same, recipe, SameForAll(3))
    assert all(torch.equal(shared[0], view) for view in shared[1:])
    drawn = augment(same, recipe, torch.Generator().manual_seed(3))  # a generator: one view each
    assert not all(torch.allclose(drawn[0], view) for view in drawn[1:])
    again = augment(to_batch(tiny_images[:1]), recipe, SameForAll(3))  # and the same view in any batch
    assert torch.allclose(again[0], shared[0])


def test_an_image_embedded_as_views_does_not_depend_on_its_batch(tiny_images):
    encoder = untrained_encoder("small-cnn", 16, device="cpu")
    plain = encoder.embed(tiny_images[:8])
    encoder.use_views(4, grayscale=False)
    viewed = encoder.embed(tiny_images, batch_size=64)
    alone = encoder.embed(tiny_images[5:6], batch_size=1)
    np.testing.assert_allclose(alone[0], viewed[5], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(viewed, axis=1), 1.0, atol=1e-5)
    assert np.abs(viewed[:8] - plain).max() > 1e-3  # the mean of views is not the plain image's vector
    with pytest.raises(ValueError, match="views must be at least 1"):
        encoder.use_views(0, grayscale=False)
    encoder.use_views(1, grayscale=False)
    np.testing.assert_allclose(encoder.embed(tiny_images[:8]), plain, atol=1e-6)
