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
