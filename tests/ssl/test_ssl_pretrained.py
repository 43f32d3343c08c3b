"""Loading encoders trained elsewhere: torchvision and timm weights files made here, never downloaded."""

import numpy as np
import pytest
import torch
import torchvision

from explorer.ssl.augment import normalise, to_batch
from explorer.ssl.backbones import make_backbone
from explorer.ssl.encoder import load_pretrained_encoder, untrained_encoder
from explorer.ssl.pretrained import PretrainedError, parse_spec


def images(n: int = 3, s: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, s, s, 3), dtype=np.uint8)


def reference_features(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = model(normalise(to_batch(x)))
    return torch.nn.functional.normalize(out, dim=1).numpy()


def test_parse_spec():
    assert parse_spec("torchvision:resnet18=/w/r.pth") == (
        "torchvision",
        "resnet18",
        __import__("pathlib").Path("/w/r.pth"),
    )
    assert parse_spec("timm:convnext_tiny")[2] is None
    with pytest.raises(PretrainedError, match="torchvision:ARCH=WEIGHTS"):
        parse_spec("keras:resnet")


def test_torchvision_weights_file_is_loaded_and_classifier_removed(tmp_path):
    torch.manual_seed(1)
    model = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(model.state_dict(), path)
    encoder = load_pretrained_encoder(f"torchvision:resnet18={path}", device="cpu", image_size=32)
    assert encoder.name == "torchvision:resnet18" and encoder.feature_dim == 512 and encoder.image_size == 32
    model.fc = torch.nn.Identity()
    x = images()
    assert np.allclose(encoder.embed(x), reference_features(model, x), atol=1e-5)
    twin = untrained_encoder(encoder.name, 32, device="cpu")  # the evaluation baseline: same architecture
    assert twin.feature_dim == 512 and not np.allclose(twin.embed(x), encoder.embed(x), atol=1e-3)
    backbone, dim = make_backbone("torchvision:resnet18", 32)  # what fine-tuning builds
    backbone.load_state_dict(encoder.backbone.state_dict())
    assert dim == 512


def test_wrapped_state_dicts_load(tmp_path):
    model = torchvision.models.mobilenet_v3_small()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}
    path = tmp_path / "wrapped.pth"
    torch.save(wrapped, path)
    encoder = load_pretrained_encoder(f"torchvision:mobilenet_v3_small={path}", device="cpu", image_size=32)
    assert encoder.feature_dim == 1024  # the classifier's last Linear is gone, its hidden layer stays


def test_wrong_architecture_names_the_file_and_what_was_expected(tmp_path):
    path = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(PretrainedError, match=r"r34\.pth does not fit torchvision resnet18: .*unexpected.*another"):
        load_pretrained_encoder(f"torchvision:resnet18={path}", device="cpu")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not weights")
    with pytest.raises(PretrainedError, match="cannot read weights file .*garbage.pth"):
        load_pretrained_encoder(f"torchvision:resnet18={garbage}", device="cpu")


def test_missing_file_says_where_to_put_it(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(PretrainedError, match=r"not found: .*nowhere\.pth .*torch\.save"):
        load_pretrained_encoder(f"torchvision:resnet18={missing}", device="cpu")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(PretrainedError, match="resnet18-f37072fd.pth.*nothing is downloaded"):
        load_pretrained_encoder("torchvision:resnet18", device="cpu")
    expected.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), expected)  # as if downloaded earlier
    assert load_pretrained_encoder("torchvision:resnet18", device="cpu", image_size=32).feature_dim == 512


def test_unknown_architectures_are_named():
    with pytest.raises(PretrainedError, match="no architecture 'resnet19'.*resnet18"):
        load_pretrained_encoder("torchvision:resnet19=/x.pth", device="cpu")


@pytest.mark.parametrize(("name", "suffix"), [("test_vit", ".safetensors"), ("test_convnext", ".pth")])
def test_timm_weights_file_is_loaded(name, suffix, tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(2)
    model = timm.create_model(name, pretrained=False)  # with its classifier, as published
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)
    encoder = load_pretrained_encoder(f"timm:{name}={path}", device="cpu")
    assert encoder.name == f"timm:{name}" and encoder.image_size == 160  # the model's own input size
    model.reset_classifier(0)
    x = images(2, 160)
    assert np.allclose(encoder.embed(x), reference_features(model, x), atol=1e-4)


def test_timm_errors(tmp_path):
    timm = pytest.importorskip("timm")
    with pytest.raises(PretrainedError, match="timm has no model 'no_such_net'"):
        load_pretrained_encoder("timm:no_such_net=/x.pth", device="cpu")
    path = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit").state_dict(), path)
    with pytest.raises(PretrainedError, match=r"vit\.pth does not fit timm test_convnext"):
        load_pretrained_encoder(f"timm:test_convnext={path}", device="cpu")
    with pytest.raises(PretrainedError, match="timm:test_vit=PATH"):
        load_pretrained_encoder("timm:test_vit", device="cpu")
