"""Encoders trained elsewhere: a torchvision or timm architecture plus a local weights file.

What ``--encoder`` takes for them:

- ``torchvision:ARCH=PATH``: a state dict saved from ``torchvision.models.ARCH`` (``.pth``), e.g.
  ``torchvision:resnet18=~/weights/resnet18-f37072fd.pth``;
- ``torchvision:ARCH``: the file torchvision itself would download, if it is already in the local
  torch hub cache (``~/.cache/torch/hub/checkpoints/``);
- ``timm:NAME=PATH``: a state dict for ``timm.create_model(NAME)`` (``.safetensors``, ``.pth``,
  ``.bin``), e.g. ``timm:convnext_tiny=~/weights/convnext_tiny.safetensors``;
- ``timm:NAME``: the model's file in the local Hugging Face hub cache, if it is there.

Nothing is fetched at run time. The classifier is removed; the encoder outputs the pooled features.
A missing file or weights for another architecture raise ``PretrainedError`` naming the file, what
was expected and where to put it.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

import torch
from torch import nn

DEFAULT_IMAGE_SIZE = 224
CLASSIFIER_NAMES = ("fc", "classifier", "heads", "head")


class PretrainedError(ValueError):
    """A weights file that is missing, unreadable, or for another architecture; the message says which."""


def parse_spec(spec: str) -> tuple[str, str, Path | None]:
    """'torchvision:resnet18=/w.pth' -> ('torchvision', 'resnet18', Path('/w.pth')); path None if absent."""
    library, _, rest = spec.partition(":")
    arch, _, path = rest.partition("=")
    if library not in ("torchvision", "timm") or not arch.strip():
        raise PretrainedError(
            f"cannot read encoder {spec!r}: write torchvision:ARCH=WEIGHTS.pth or timm:NAME=WEIGHTS.safetensors"
        )
    return library, arch.strip(), Path(path.strip()).expanduser() if path.strip() else None


# ---- architectures ---------------------------------------------------------------------------
def _torchvision_model(arch: str) -> nn.Module:
    import torchvision

    if arch not in torchvision.models.list_models():
        close = difflib.get_close_matches(arch, torchvision.models.list_models(), n=6, cutoff=0.6)
        raise PretrainedError(
            f"torchvision has no architecture {arch!r}" + (f"; similar: {', '.join(close)}" if close else "")
        )
    return torchvision.models.get_model(arch, weights=None)


def _timm_model(name: str, image_size: int | None) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise PretrainedError(
            f"timm:{name} needs the timm package: pip install 'embedding-explorer[timm]' (or pip install timm)"
        ) from None
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=6, cutoff=0.6)
        raise PretrainedError(f"timm has no model {name!r}" + (f"; similar: {', '.join(close)}" if close else ""))
    if image_size:
        try:  # transformers take their input size at construction
            return timm.create_model(name, pretrained=False, num_classes=0, img_size=image_size)
        except TypeError:
            pass
    return timm.create_model(name, pretrained=False, num_classes=0)


def _find_classifier(model: nn.Module) -> tuple[nn.Module, str, str] | None:
    """(parent module, attribute, qualified name) of the final Linear classifier, or None."""
    for attr in CLASSIFIER_NAMES:
        module = getattr(model, attr, None)
        if isinstance(module, nn.Linear):
            return model, attr, attr
        if isinstance(module, nn.Sequential):
            linears = [k for k, m in module.named_children() if isinstance(m, nn.Linear)]
            if linears:
                return module, linears[-1], f"{attr}.{linears[-1]}"
    return None


def _strip_classifier(model: nn.Module) -> None:
    """Replace the final classifier (in fc / classifier / heads / head) by Identity."""
    found = _find_classifier(model)
    if found is not None:
        setattr(found[0], found[1], nn.Identity())


def feature_dim_of(model: nn.Module, image_size: int) -> int:
    """D of a model mapping (B, 3, S, S) -> (B, D), found with one small forward pass."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, image_size, image_size))
    model.train(was_training)
    if isinstance(out, tuple | list):
        out = out[0]
    if out.ndim != 2:
        raise PretrainedError(f"{type(model).__name__} gives features of shape {tuple(out.shape)}, not (B, D)")
    return int(out.shape[1])


def build_architecture(name: str, image_size: int) -> tuple[nn.Module, int]:
    """Randomly initialised ``torchvision:ARCH`` / ``timm:NAME`` without its classifier, and its D."""
    library, arch, _ = parse_spec(name)
    model = _torchvision_model(arch) if library == "torchvision" else _timm_model(arch, image_size)
    if library == "torchvision":
        _strip_classifier(model)
    return model, feature_dim_of(model, image_size)


# ---- weights files ---------------------------------------------------------------------------
def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (.safetensors, or a torch file holding one, possibly wrapped in
    ``state_dict`` / ``model``, with any ``module.`` prefix from DataParallel removed)."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many kinds for a bad file
        raise PretrainedError(f"cannot read weights file {path}: {exc}") from None
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], classifier: list[str], what: str, path: Path) -> None:
    """Load ``state`` into ``model`` ignoring classifier weights; PretrainedError when it does not fit."""
    ignored = tuple(f"{c}." for c in classifier)
    model_state = {k: v for k, v in model.state_dict().items() if not k.startswith(ignored)}
    state = {k: v for k, v in state.items() if not k.startswith(ignored)}
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    wrong = [k for k in state if k in model_state and state[k].shape != model_state[k].shape]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            problems.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
    if problems:
        raise PretrainedError(
            f"{path} does not fit {what}: {'; '.join(problems)}. Expected a state dict saved from {what} "
            "(torch.save(model.state_dict(), PATH)); is the file for another architecture?"
        )
    model.load_state_dict(state, strict=False)


def _hub_file(library: str, arch: str) -> tuple[Path | None, str]:
    """(the cached weights file if it exists, a sentence saying where it is expected)."""
    if library == "torchvision":
        import torchvision

        try:
            url = torchvision.models.get_model_weights(arch).DEFAULT.url
        except (ValueError, AttributeError, KeyError):
            return None, f"torchvision publishes no weights for {arch}: pass torchvision:{arch}=PATH"
        expected = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        where = (
            f"expected {expected} (torchvision's download of {url}); nothing is downloaded at run time: "
            f"copy that file there, or pass torchvision:{arch}=PATH"
        )
        return (expected if expected.is_file() else None), where
    import timm

    hub_id = (timm.models.get_pretrained_cfg(arch) or {}).__dict__.get("hf_hub_id") if timm.is_model(arch) else None
    cache = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    cache = cache.expanduser()
    if hub_id:
        folder = cache / f"models--{hub_id.replace('/', '--')}" / "snapshots"
        for name in ("model.safetensors", "pytorch_model.bin"):
            found = sorted(folder.glob(f"*/{name}"))
            if found:
                return found[-1], ""
        where = (
            f"expected model.safetensors of hf-hub:{hub_id} under {folder}; nothing is downloaded at run time: "
            f"pass timm:{arch}=PATH with a local weights file"
        )
    else:
        where = f"pass timm:{arch}=PATH with a local weights file (.safetensors, .pth or .bin)"
    return None, where


def load_pretrained(spec: str, image_size: int | None = None) -> tuple[nn.Module, int, str, int, Path]:
    """(backbone with the weights, D, architecture name for ``make_backbone``, image size, weights file).

    ``spec`` is ``torchvision:ARCH[=PATH]`` or ``timm:NAME[=PATH]``; ``image_size`` defaults to the
    model's pretraining size (224 for torchvision).
    """
    library, arch, path = parse_spec(spec)
    name = f"{library}:{arch}"
    what = f"torchvision {arch}" if library == "torchvision" else f"timm {arch}"
    if library == "torchvision":
        model, size = _torchvision_model(arch), image_size or DEFAULT_IMAGE_SIZE
    else:
        size = image_size or _timm_input_size(arch)
        model = _timm_model(arch, size)
    if path is None:
        path, where = _hub_file(library, arch)
        if path is None:
            raise PretrainedError(f"no weights file for {what}: {where}")
    elif not path.is_file():
        raise PretrainedError(
            f"weights file not found: {path} (expected a {what} state dict, e.g. saved with "
            f"torch.save(model.state_dict(), '{path}'); put it there or pass {name}=PATH with its real location)"
        )
    state = read_weights(path)
    if library == "torchvision":
        found = _find_classifier(model)
        _load_into(model, state, [found[2]] if found else [], what, path)
        _strip_classifier(model)
    else:
        classifier = (model.pretrained_cfg or {}).get("classifier") or "head"
        filter_fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
        if filter_fn is not None:  # timm's own conversion (e.g. resampling position embeddings)
            try:
                state = filter_fn(state, model)
            except Exception as exc:  # timm raises many kinds for a foreign file
                raise PretrainedError(f"{path} does not fit {what}: {exc}") from None
        _load_into(model, state, [classifier], what, path)
    return model, feature_dim_of(model, size), name, size, path


def _timm_input_size(arch: str) -> int:
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    return int(cfg.input_size[-1]) if cfg is not None and cfg.input_size else DEFAULT_IMAGE_SIZE
