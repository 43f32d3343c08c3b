import numpy as np
import pytest
import torch

from explorer.ssl.backbones import make_backbone, resolve_backbone
from explorer.ssl.devices import pick_device


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="'tpu'"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA"):
        pick_device("cuda")


@pytest.mark.parametrize(("name", "size"), [("small-cnn", 16), ("small-cnn", 96), ("resnet18", 16), ("resnet18", 64)])
def test_backbone_maps_images_to_features(name, size):
    model, dim = make_backbone(name, size)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, dim)


def test_resnet_small_stem_and_resnet50_dim():
    small, _ = make_backbone("resnet18", 32)
    assert small.conv1.stride == (1, 1) and isinstance(small.maxpool, torch.nn.Identity)
    big, _ = make_backbone("resnet18", 64)
    assert big.conv1.stride == (2, 2)
    _, dim = make_backbone("resnet50", 32)
    assert dim == 2048


def test_backbone_names():
    assert resolve_backbone("auto", torch.device("cpu")) == "small-cnn"
    assert resolve_backbone("auto", torch.device("cuda")) == "resnet18"
    with pytest.raises(ValueError, match="small-cnn"):
        make_backbone("vit", 32)
    with pytest.raises(ValueError, match="resnet18"):
        resolve_backbone("vit", "cpu")


def test_native_bf16_is_read_from_the_cpu_flags():
    from explorer.ssl.devices import cpu_has_native_bf16

    head = "processor\t: 0\nmodel name\t: Some CPU\n"
    assert cpu_has_native_bf16(head + "flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    assert cpu_has_native_bf16(head + "flags\t\t: fpu avx512f avx512_bf16\n")
    assert not cpu_has_native_bf16(head + "flags\t\t: fpu sse2 avx2 avx512f avx512bw\n")  # emulated: slower
    assert not cpu_has_native_bf16("")  # nothing to read (another OS)


def test_cpu_training_precision_follows_the_cpu_and_the_override(monkeypatch):
    import explorer.ssl.devices as devices

    cpu = torch.device("cpu")
    monkeypatch.delenv(devices.CPU_BF16_VARIABLE, raising=False)
    monkeypatch.setattr(devices, "_this_cpu_has_native_bf16", lambda: True)
    assert devices.training_autocast(cpu) is torch.bfloat16
    monkeypatch.setattr(devices, "_this_cpu_has_native_bf16", lambda: False)
    assert devices.training_autocast(cpu) is None
    monkeypatch.setenv(devices.CPU_BF16_VARIABLE, "1")
    assert devices.training_autocast(cpu) is torch.bfloat16
    monkeypatch.setenv(devices.CPU_BF16_VARIABLE, "0")
    monkeypatch.setattr(devices, "_this_cpu_has_native_bf16", lambda: True)
    assert devices.training_autocast(cpu) is None


def test_bf16_training_on_the_cpu_learns(monkeypatch, tmp_path):
    """Under bf16 autocast (forced, so that it runs on any CPU) the loss stays finite and falls."""
    from explorer.ssl.devices import CPU_BF16_VARIABLE
    from explorer.ssl.trainer import TrainConfig, train

    monkeypatch.setenv(CPU_BF16_VARIABLE, "1")
    rng = np.random.default_rng(0)
    images = np.zeros((64, 16, 16, 3), np.uint8)
    images[:32, :, :8] = 255  # two kinds: left half bright, right half bright
    images[32:, :, 8:] = 255
    images = np.clip(images.astype(int) + rng.integers(-30, 30, images.shape), 0, 255).astype(np.uint8)
    losses: list[float] = []
    config = TrainConfig(epochs=6, image_size=16, batch_size=16, backbone="small-cnn", device="cpu")
    result = train(images, config, tmp_path, progress=lambda r: r.loss is not None and losses.append(r.loss))
    assert result.precision == "bf16"  # what the run records
    assert np.isfinite(losses).all()
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
