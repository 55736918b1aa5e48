"""Released weights into vidnets models: the authors' Caffe models and the common PyTorch layouts.

Sources and where they go (``create(name, weights=PATH)`` loads any of them):

* ``.caffemodel`` (C3D v1.0 Sports-1M, Res3D = C3D v1.1, P3D-199, TSN): read without Caffe
  (:mod:`vidnets.models.caffe`) and mapped by the authors' layer names, as written in their
  prototxts (``conv1a`` … ``fc8-1``; ``res2a_branch2b_t`` / ``bn2a_branch2b_t``; ``bn_conv1`` +
  ``scale_conv1``; ``inception_3a/1x1``). BatchNorm comes as the action-recognition Caffe fork's
  ``BN`` layer (scale, shift, mean, variance) or as BVLC ``BatchNorm`` (mean·s, variance·s, s)
  followed by a ``Scale`` layer (γ, β); both use ε = 1e-5 by default, as PyTorch does, and the
  prototxts do not change it. ``vidnets convert caffe`` writes the result as a ``.pt``.
* torchvision ``r3d_18`` / ``mc3_18`` state dicts → ``res3d18`` (``mc3_18`` = ``conv_types``
  3d, 3d, 2d, 2d, 2d), by the key map :func:`torchvision_to_res3d`.
* tsn-pytorch checkpoints (``base_model.…``, ``new_fc``) and Cadene's BN-Inception
  (``inception_3a_1x1…``, ``last_linear``) → ``tsn_bninception``; an RGB conv1 loaded into a flow
  or RGB-difference model gets TSN's cross-modality initialisation.
* The C3D PyTorch port's ``c3d.pickle`` (``conv1.weight`` … ``fc8.bias``) → ``c3d``.
* vidnets' own state dicts and files written by ``vidnets convert``.

Every conversion returns a :class:`ConversionReport` naming each tensor that was loaded, each one
of the source that has no place in the model (unused) and each model tensor the source did not
provide (missing). A tensor whose shape differs from the model's is refused with
:class:`WeightsMismatchError`. The model's keyword arguments that the file determines (classes,
input channels, Res3D's ``width``, ``res2_projection`` and ``conv_types``, TSN's modality) are read
from it unless given.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidnets.models.registry import model_info
from vidnets.utils.io import load_checkpoint

__all__ = [
    "ConversionReport",
    "WeightsMismatchError",
    "WeightsDownloadError",
    "CONVERTED_FORMAT",
    "DOWNLOADS",
    "caffe_layer_names",
    "convert_caffemodel",
    "load_caffe_layers",
    "load_state_dict_weights",
    "create_with_weights",
    "torchvision_to_res3d",
    "res3d_to_torchvision",
    "download_weights",
    "sha256_of",
    "verify_sha256",
]

CONVERTED_FORMAT = "vidnets-converted-weights/1"


class WeightsMismatchError(ValueError):
    """A tensor of the source has another shape than the model's, or the source does not fit the model."""


class WeightsDownloadError(RuntimeError):
    """A named checkpoint could not be downloaded or failed its hash check."""


@dataclass
class ConversionReport:
    """What happened to every tensor (see the module docstring)."""

    source: str
    loaded: list[str] = field(default_factory=list)  # "source name -> model key"
    unused: list[str] = field(default_factory=list)  # source tensors with no place in the model
    missing: list[str] = field(default_factory=list)  # model tensors the source did not provide

    def summary(self) -> str:
        return f"{self.source}: loaded {len(self.loaded)}, unused {len(self.unused)}, missing {len(self.missing)}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "loaded": self.loaded, "unused": self.unused, "missing": self.missing}


def _fit(value: torch.Tensor, target: torch.Tensor, where: str, key: str) -> torch.Tensor:
    """``value`` in ``target``'s shape; only singleton axes may differ (Caffe's 4-/5-D vectors)."""
    if tuple(value.shape) == tuple(target.shape):
        return value.to(target.dtype)
    squeeze = [d for d in value.shape if d != 1], [d for d in target.shape if d != 1]
    if squeeze[0] != squeeze[1]:
        raise WeightsMismatchError(
            f"{where} has shape {tuple(value.shape)} but the model's {key} "
            f"is {tuple(target.shape)}: the weights belong to another architecture or configuration"
        )
    return value.reshape(target.shape).to(target.dtype)


def _model_keys(model: nn.Module) -> list[str]:
    return [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]


def _family(arch: str) -> str:
    return model_info(arch).family


# -- Caffe layer names ------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _block_tag(stage: int, index: int, numbered: bool) -> str:
    """MSRA Caffe ResNet block names: res3a, res3b … or res3a, res3b1, res3b2 … (deep nets)."""
    if index == 0 or not numbered:
        return f"{stage}{_LETTERS[index]}"
    return f"{stage}b{index}"


def _resnet_names(model: nn.Module, numbered_stages: tuple[int, ...], branches: dict[str, tuple[str, str]]) -> dict:
    names = {"conv1": "conv1", "bn_conv1": "bn1", "scale_conv1": "bn1"}
    for i in range(4):
        for b, block in enumerate(getattr(model, f"layer{i + 1}")):
            tag, path = _block_tag(i + 2, b, i + 2 in numbered_stages), f"layer{i + 1}.{b}"
            for branch, (conv, bn) in branches.items():
                if hasattr(block, conv):
                    names[f"res{tag}_{branch}"] = f"{path}.{conv}"
                    names[f"bn{tag}_{branch}"] = names[f"scale{tag}_{branch}"] = f"{path}.{bn}"
            if block.downsample is not None:
                names[f"res{tag}_branch1"] = f"{path}.downsample.0"
                names[f"bn{tag}_branch1"] = names[f"scale{tag}_branch1"] = f"{path}.downsample.1"
    return names


def _tsn_caffe_name(name: str) -> str:
    if name.startswith("inception_"):
        return name.replace(".", "/", 1)
    return name.replace("_", "/", 1)  # conv1_7x7_s2 -> conv1/7x7_s2


def caffe_layer_names(model: nn.Module, arch: str) -> dict[str, str]:
    """Caffe layer name (the authors' prototxt) → vidnets module path, for the families released in Caffe."""
    family = _family(arch)
    if family == "c3d":
        names = {n: n for n, m in model.named_modules() if isinstance(m, (nn.Conv3d, nn.Linear))}
        names.update({f"{n}-1": n for n in ("fc6", "fc7", "fc8")})  # C3D v1.0 names its fc layers fc6-1 …
        return names
    if family == "res3d":
        names = _resnet_names(model, (), {"branch2a": ("conv1", "bn1"), "branch2b": ("conv2", "bn2")})
        return {**names, "fc8": "fc"}
    if family == "p3d":
        numbered = (3, 4) if arch in ("p3d131", "p3d199") else ()
        branches = {
            "branch2a": ("conv1", "bn1"),
            "branch2b": ("conv2", "bn2"),
            "branch2b_t": ("conv_t", "bn_t"),
            "branch2c": ("conv3", "bn3"),
        }
        names = _resnet_names(model, numbered, branches)
        return {**names, "fc_sports1m": "fc", "fc_kinetics": "fc", "fc": "fc"}
    if family == "tsn":
        names = {
            _tsn_caffe_name(n): f"backbone.{n}"
            for n, m in model.backbone.named_modules()
            if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))
        }
        return {**names, "fc-action": "fc"}
    raise WeightsMismatchError(
        f"--arch {arch}: no Caffe weights were released for the {family} family (C3D, Res3D, P3D and TSN were)"
    )


def _caffe_tensors(layer, module: nn.Module, path: str) -> list[tuple[str, torch.Tensor]]:
    """(parameter name, tensor) for each blob of ``layer`` loaded into ``module``."""
    blobs = [torch.from_numpy(np.ascontiguousarray(b)) for b in layer.blobs]
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if layer.type == "BatchNorm":  # BVLC: mean·s, var·s, s (s = 0 means no statistics)
            if len(blobs) != 3:
                raise WeightsMismatchError(f"{path}: BatchNorm layer {layer.name} has {len(blobs)} blobs, expected 3")
            s = float(blobs[2].reshape(-1)[0])
            factor = 0.0 if s == 0 else 1.0 / s
            return [("running_mean", blobs[0] * factor), ("running_var", blobs[1] * factor)]
        if layer.type == "Scale":
            return list(zip(("weight", "bias"), blobs))
        return list(zip(("weight", "bias", "running_mean", "running_var"), blobs))  # "BN": scale, shift, mean, var
    if len(blobs) > 1 and module.bias is None:
        raise WeightsMismatchError(f"{path}: layer {layer.name} has a bias but the model's layer has none")
    return list(zip(("weight", "bias"), blobs))


def load_caffe_layers(model: nn.Module, arch: str, layers: list, source: str) -> ConversionReport:
    """Copy the blobs of ``layers`` (from :func:`vidnets.models.caffe.read_caffemodel`) into ``model``."""
    names = caffe_layer_names(model, arch)
    state, report, new = model.state_dict(), ConversionReport(source), {}
    for layer in layers:
        if not layer.blobs:
            continue
        if layer.name not in names:
            report.unused += [f"{layer.name}[{i}] {tuple(b.shape)}" for i, b in enumerate(layer.blobs)]
            continue
        module_path = names[layer.name]
        for i, (param, value) in enumerate(_caffe_tensors(layer, model.get_submodule(module_path), source)):
            key = f"{module_path}.{param}"
            new[key] = _fit(value, state[key], f"{source}: layer {layer.name} blob {i}", key)
            report.loaded.append(f"{layer.name}[{i}] -> {key}")
    model.load_state_dict(new, strict=False)
    report.missing = [k for k in _model_keys(model) if k not in new]
    return report


def _caffe_kwargs(arch: str, layers: list) -> dict[str, Any]:
    """Model kwargs the caffemodel determines: classes, input channels, Res3D's res2 projection."""
    with torch.device("meta"):
        probe = model_info(arch).builder()
    names = caffe_layer_names(probe, arch)
    by_module = {names[l.name]: l for l in layers if l.name in names and l.blobs}
    kwargs: dict[str, Any] = {}
    fc = by_module.get("fc8" if _family(arch) == "c3d" else "fc")
    if fc is not None:
        kwargs["num_classes"] = int(fc.blobs[0].reshape(-1, *fc.blobs[0].shape[-1:]).shape[0])
    first = by_module.get(getattr(probe, "first_conv", "conv1")) or by_module.get("conv1a")
    if first is not None and first.blobs[0].ndim >= 4:
        kwargs.update(_input_kwargs(arch, int(first.blobs[0].shape[1])))
    if _family(arch) == "res3d":
        kwargs["res2_projection"] = "res2a_branch1" in {l.name for l in layers}
        if first is not None:
            kwargs["width"] = int(first.blobs[0].shape[0])
    return kwargs


def _input_kwargs(arch: str, channels: int) -> dict[str, Any]:
    if _family(arch) == "tsn":
        return {} if channels == 3 else {"modality": "flow", "new_length": channels // 2}
    return {"in_channels": channels}


def convert_caffemodel(path: str | os.PathLike, arch: str, **kwargs) -> tuple[nn.Module, ConversionReport]:
    """Read a ``.caffemodel`` and build ``arch`` holding its weights (module docstring)."""
    from vidnets.models.caffe import read_caffemodel

    layers = read_caffemodel(path)
    kwargs = {**_caffe_kwargs(arch, layers), **kwargs}
    model = model_info(arch).builder(**kwargs)
    report = load_caffe_layers(model, arch, layers, str(path))
    if not report.loaded:
        raise WeightsMismatchError(
            f"{path}: no layer name matches {arch} (found {', '.join(l.name for l in layers[:5])} …)"
        )
    model.converted_kwargs = kwargs  # what ``vidnets convert`` stores beside the weights
    return model, report


# -- PyTorch layouts --------------------------------------------------------------------------------

# (vidnets name, torchvision name): the stem's modules, then those inside every block layerN.M
_RES3D_STEM_NAMES = (("conv1", "stem.0"), ("bn1", "stem.1"))
_RES3D_BLOCK_NAMES = (("conv1", "conv1.0"), ("bn1", "conv1.1"), ("conv2", "conv2.0"), ("bn2", "conv2.1"))


def _res3d_rename_table(to_torchvision: bool) -> list[tuple[str, str]]:
    """(pattern, replacement) pairs renaming state-dict keys between the two layouts."""
    table = []
    for names, prefix in ((_RES3D_STEM_NAMES, ""), (_RES3D_BLOCK_NAMES, r"(layer\d+\.\d+)\.")):
        for ours, theirs in names:
            source, target = (ours, theirs) if to_torchvision else (theirs, ours)
            table.append((f"^{prefix}{re.escape(source)}\\.", (r"\1." if prefix else "") + f"{target}."))
    return table


_TORCHVISION_TO_RES3D = _res3d_rename_table(to_torchvision=False)
_RES3D_TO_TORCHVISION = _res3d_rename_table(to_torchvision=True)


def _rename(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def torchvision_to_res3d(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ``VideoResNet`` keys (``stem.0``, ``layer1.0.conv1.0`` …) → vidnets ``Res3D`` keys."""
    return {_rename(k, _TORCHVISION_TO_RES3D): v for k, v in state.items()}


def res3d_to_torchvision(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`torchvision_to_res3d` (``downsample.*`` and ``fc.*`` keep their names)."""
    return {_rename(k, _RES3D_TO_TORCHVISION): v for k, v in state.items()}


def _tsn_key(key: str) -> str | None:
    from vidnets.models.tsn import _backbone_key

    key = key.removeprefix("module.")
    if key.startswith(("new_fc.", "fc.")):  # tsn-pytorch's action classifier / ours
        return "fc." + key.split(".", 1)[1]
    if key.startswith("last_linear."):
        return None  # Cadene's ImageNet classifier: reported as unused
    mapped = _backbone_key(key.removeprefix("backbone."))
    return None if mapped is None else f"backbone.{mapped}"


def _c3d_key(key: str) -> str:
    from vidnets.models.c3d import _port_key

    return _port_key(key)


def _to_vidnets_keys(arch: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor | None]:
    """Source keys renamed to vidnets keys (``None``: no place in the model)."""
    family = _family(arch)
    if family == "res3d" and any(k.startswith("stem.") for k in state):
        return {k: _rename(k, _TORCHVISION_TO_RES3D) for k in state}
    if family == "tsn":
        return {k: _tsn_key(k) for k in state}
    if family == "c3d":
        return {k: _c3d_key(k) for k in state}
    return {k: k.removeprefix("module.") for k in state}


def _unwrap(state: Any, source: str, arch: str) -> tuple[dict, dict]:
    """(state dict, stored model kwargs) of a loaded file."""
    kwargs: dict = {}
    if isinstance(state, Mapping) and state.get("format") == CONVERTED_FORMAT:
        if state.get("arch") != arch:
            raise WeightsMismatchError(f"{source}: converted for {state.get('arch')}, not {arch}")
        kwargs = dict(state.get("kwargs") or {})
        state = state["state_dict"]
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatchError(f"{source}: expected a state dict of tensors, found {type(state).__name__}")
    return dict(state), kwargs


def _state_kwargs(arch: str, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Model kwargs a state dict determines (classes, input channels, Res3D projection/conv types)."""
    renamed = {new: state[old] for old, new in _to_vidnets_keys(arch, state).items() if new}
    kwargs: dict[str, Any] = {}
    fc = renamed.get("fc8.weight" if _family(arch) == "c3d" else "fc.weight")
    if fc is not None and fc.dim() == 2:
        kwargs["num_classes"] = int(fc.shape[0])
    first = next(
        (renamed[k] for k in ("conv1a.weight", "conv1.weight", "backbone.conv1_7x7_s2.weight") if k in renamed), None
    )
    if first is not None and _family(arch) in ("c3d", "res3d", "p3d"):
        kwargs["in_channels"] = int(first.shape[1])
    if _family(arch) == "res3d":
        kwargs["res2_projection"] = "layer1.0.downsample.0.weight" in renamed
        if first is not None:
            kwargs["width"] = int(first.shape[0])
        stages = [renamed.get(f"layer{i}.0.conv1.weight") for i in range(1, 5)]
        if first is not None and all(w is not None and w.dim() == 5 for w in stages):
            kwargs["conv_types"] = tuple("3d" if w.shape[2] > 1 else "2d" for w in (first, *stages))
    return kwargs


def load_state_dict_weights(
    model: nn.Module, arch: str, state: Mapping[str, torch.Tensor], source: str
) -> ConversionReport:
    """Load a state dict of any layout in the module docstring into ``model`` (strict about shapes)."""
    own, report, new = model.state_dict(), ConversionReport(source), {}
    for old, key in _to_vidnets_keys(arch, state).items():
        value = state[old]
        if key is None or key not in own:
            report.unused.append(f"{old} {tuple(value.shape)}")
            continue
        if _family(arch) == "tsn" and key == "backbone.conv1_7x7_s2.weight" and value.shape[1] != own[key].shape[1]:
            from vidnets.models.base import cross_modality_weight

            value = cross_modality_weight(value, own[key].shape[1])  # TSN §3.2: RGB kernel averaged, replicated
            old += " (cross-modality)"
        new[key] = _fit(value, own[key], f"{source}: {old}", key)
        report.loaded.append(f"{old} -> {key}")
    if not new:
        raise WeightsMismatchError(
            f"{source}: no tensor name matches {arch} (file keys start {', '.join(list(state)[:4])})"
        )
    model.load_state_dict(new, strict=False)
    report.missing = [k for k in _model_keys(model) if k not in new]
    return report


# -- downloads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    url: str
    sha256_prefix: str  # torchvision publishes the first hex digits of the file's SHA-256 in its name
    num_classes: int


DOWNLOADS: dict[tuple[str, str], Download] = {
    ("res3d18", "kinetics400"): Download("https://download.pytorch.org/models/r3d_18-b3b3357e.pth", "b3b3357e", 400),
}


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, prefix: str) -> None:
    """Raise :class:`WeightsDownloadError` unless the file's SHA-256 starts with ``prefix``."""
    digest = sha256_of(path)
    if not digest.startswith(prefix):
        raise WeightsDownloadError(
            f"{path}: SHA-256 {digest[:16]}… does not start with the published "
            f"{prefix}; delete the file and download it again"
        )


def download_weights(arch: str, name: str) -> Path:
    """The cached file of a named checkpoint, downloaded into the torch hub cache on first use.

    The download is checked against the published SHA-256 prefix before it is moved into the cache
    (``torch.hub.download_url_to_file``), and the cached file is checked again on every use.
    """
    entry = DOWNLOADS.get((arch, name))
    if entry is None:
        known = ", ".join(f"{a} weights={n!r}" for a, n in DOWNLOADS) or "none"
        raise WeightsMismatchError(
            f"weights={name!r}: no such file, and no downloadable checkpoint of that name "
            f"for {arch} (available: {known})"
        )
    target = Path(torch.hub.get_dir()) / "checkpoints" / entry.url.rsplit("/", 1)[-1]
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(entry.url, str(target), hash_prefix=entry.sha256_prefix, progress=False)
        except Exception as e:  # URLError, socket and HTTP errors, a failed hash: one line, no traceback
            raise WeightsDownloadError(
                f"cannot download {entry.url} ({type(e).__name__}: {e}); without network, "
                f"fetch it elsewhere and pass weights=PATH"
            ) from e
    verify_sha256(target, entry.sha256_prefix)
    return target


# -- create(name, weights=...) ----------------------------------------------------------------------


def create_with_weights(arch: str, weights: str | os.PathLike, **kwargs) -> nn.Module:
    """Build ``arch`` and load ``weights`` (a path of any layout above, or a download name)."""
    source = str(weights)
    looks_like_path = Path(source).exists() or os.sep in source or "." in source
    path = Path(source) if looks_like_path else download_weights(arch, source)
    if path.suffix == ".caffemodel":
        model, report = convert_caffemodel(path, arch, **kwargs)
    else:
        state, stored = _unwrap(load_checkpoint(path), str(path), arch)
        kwargs = {**_state_kwargs(arch, state), **stored, **kwargs}
        model = model_info(arch).builder(**kwargs)
        report = load_state_dict_weights(model, arch, state, str(path))
    model.weights_report = report
    return model
