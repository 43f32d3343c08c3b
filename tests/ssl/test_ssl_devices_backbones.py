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
