"""``model.json``: what a deployed model needs besides its weights, readable without vidnets.

An export folder holds the network (``model.onnx``, ``model.pt2`` or ``model.ts``) and this file.
Everything a client must do to turn a video into the network's input, and its output into an
answer, is written down here, so a program in another language can use the model::

    {"format": "vidnets-export/1",
     "model": {"name": "res3d18", "kwargs": {...}, "num_classes": 101, "task": null},
     "class_names": ["ApplyEyeMakeup", ...],
     "metrics": {"video_top1": 0.41, "videos": 3783, "chance": 0.0099, ...},   # recorded by `vidnets test`
     "recipe": "res3d", "modality": "rgb",
     "preprocessing": {"frames": 8, "stride": 2, "size": [128, 171], "crop": 112,
                       "mean": [128, 128, 128], "std": [1, 1, 1], "value_range": "0-255 RGB", ...},
     "test_protocol": {"views": 10, "crops": 1, "sampling": "uniform", "aggregate": "..."},
     "input": {"name": "clips", "layout": "NCTHW", "shape": [null, 3, 8, 112, 112], "dtype": "float32",
               "dynamic_axes": ["N"]},
     "output": {"name": "logits", "layout": "NC", "shape": [null, 101], ...},
     "config": {...the training config...},
     "export": {"format": "onnx", "file": "model.onnx", "parity": {...}, "torch": "2.13.0", ...}}

``input.shape`` is one *view* of the test protocol with a leading batch axis; ``null`` marks an
axis of any size. A video's views (``test_protocol.views`` × ``crops``) go through the network as
one batch, and the video's scores are the mean of their softmax. ``config`` is the training
configuration, so vidnets itself rebuilds the exact test pipeline from it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from torch import nn

from vidnets.engine.config import Config, ConfigError, config_to_dict, load_config

__all__ = ["CONTRACT_FORMAT", "CONTRACT_FILE", "build_contract", "read_contract", "contract_config", "view_shape"]

CONTRACT_FORMAT = "vidnets-export/1"
CONTRACT_FILE = "model.json"

#: per-view input layout of each kind of recipe (the batch axis N first)
_LAYOUTS = {"clip": "NCTHW", "frame": "NCHW", "segments": "NKCHW", "two_stream": "NCHW", "tsn": "NKCHW"}


def _recipe_settings(cfg: Config) -> tuple[str, dict]:
    """(kind, settings) of the test dataset ``cfg.data`` describes: the recipe's defaults with its
    ``test_kwargs`` applied, as the engine's test dataset applies them."""
    recipe, overrides = cfg.data.recipe, dict(cfg.data.test_kwargs)
    from vidnets.data.presets import recipe_defaults
    from vidnets.engine.recipes import data_recipe

    if data_recipe(recipe).reads_flow:
        from vidnets.flow.datasets import RECIPES

        settings = {**RECIPES[recipe], **overrides}
        if "frames" in settings:
            settings["length"] = settings.pop("frames")
        settings.pop("size", None)
        return settings["layout"], settings
    defaults = recipe_defaults(recipe)
    names = {f.name for f in dataclasses.fields(defaults)}
    settings = dataclasses.asdict(dataclasses.replace(defaults, **{k: v for k, v in overrides.items() if k in names}))
    return settings["kind"], settings


def view_shape(cfg: Config, model: nn.Module) -> tuple[int, ...]:
    """The shape of one test view (no batch axis) that the test dataset of ``cfg`` feeds ``model``."""
    kind, s = _recipe_settings(cfg)
    channels = model.in_channels
    if kind == "clip":
        return channels, s["frames"], s["crop"], s["crop"]
    if kind in ("frame", "two_stream"):
        return channels, s["crop"], s["crop"]
    return s["views"], channels, s["crop"], s["crop"]  # segments / tsn: the test frames are TSN's segments


def _preprocessing(kind: str, s: dict, cfg: Config) -> tuple[dict, dict, str]:
    """(preprocessing, test protocol, modality) in the words of the contract."""
    if kind in ("two_stream", "tsn"):
        prep = {
            "flow_root": cfg.data.flow_root,
            "fields_per_view": s["length"],
            "crop": s["crop"],
            "representation": s["representation"],
            "mean_subtraction": s["mean_subtraction"],
            "value_range": "optical-flow displacements in pixels of the stored flow (vidnets flow extract)",
        }
        protocol = {"views": s["views"], "crops": s["crops"], "sampling": "evenly spaced windows of fields"}
        return prep, protocol, "flow"
    prep = {
        "frames": s["frames"],
        "stride": s["stride"],
        "size": s["size"],
        "crop": s["crop"],
        "mean": list(s["mean"]),
        "std": list(s["std"]),
        "segments_per_view": s["views"] if kind == "segments" else None,
        "value_range": "0-255 RGB, (x - mean) / std per channel",
        "size_means": "an int is the short side after resizing, a pair is (height, width)",
    }
    if s["diff"]:
        prep["rgb_difference"] = "each snippet of `frames` frames becomes frames-1 differences of consecutive frames"
    views = s["views"] if kind != "segments" else 1
    sampling = {
        "clip": f"{s['test_mode']} clips of `frames` frames at `stride`",
        "frame": "evenly spaced single frames",
        "segments": "evenly spaced snippets as TSN segments",
    }[kind]
    protocol = {
        "views": views,
        "crops": s["crops"],
        "sampling": sampling,
        "crop_positions": "centre" if s["crops"] == 1 else f"{s['crops']} crops (corners, centre, mirrored)",
    }
    return prep, protocol, "rgbdiff" if s["diff"] else "rgb"


def build_contract(state: dict, cfg: Config, class_names: list[str], model: nn.Module) -> dict:
    """The contract of a checkpoint (``state`` as read by ``read_checkpoint``, ``cfg`` its config)."""
    kind, settings = _recipe_settings(cfg)
    prep, protocol, modality = _preprocessing(kind, settings, cfg)
    protocol["aggregate"] = "softmax of each view's logits, averaged over the views"
    shape = view_shape(cfg, model)
    from vidnets.engine.config import eval_task

    return {
        "format": CONTRACT_FORMAT,
        "model": {
            "name": state["model_name"],
            "kwargs": dict(state.get("model_kwargs") or {}),
            "num_classes": len(class_names),
            "task": eval_task(cfg),
        },
        "class_names": list(class_names),
        "metrics": {k: v for k, v in dict(state.get("metrics") or {}).items() if isinstance(v, (int, float, str))},
        "recipe": cfg.data.recipe,
        "modality": modality,
        "preprocessing": prep,
        "test_protocol": protocol,
        "input": {
            "name": "clips",
            "layout": _LAYOUTS[kind],
            "shape": [None, *shape],
            "dtype": "float32",
            "dynamic_axes": ["N"],
        },
        "output": {
            "name": "logits",
            "layout": "NC",
            "shape": [None, len(class_names)],
            "dtype": "float32",
            "meaning": "class scores before the softmax, in the order of class_names",
        },
        "config": config_to_dict(cfg),
    }


def read_contract(folder: str | Path) -> dict:
    """The contract of an export folder; a missing or foreign ``model.json`` is a one-line ``ValueError``."""
    path = Path(folder) / CONTRACT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected an export folder written by `vidnets export`")
    try:
        contract = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); re-run `vidnets export`") from None
    if not isinstance(contract, dict) or contract.get("format") != CONTRACT_FORMAT:
        raise ValueError(
            f"{path}: expected \"format\": \"{CONTRACT_FORMAT}\"; re-run `vidnets export` with this version of vidnets"
        )
    missing = [k for k in ("class_names", "config", "input", "export") if k not in contract]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}; re-run `vidnets export`")
    return contract


def contract_config(contract: dict) -> Config:
    """The training config recorded in a contract, for rebuilding its test pipeline."""
    try:
        return load_config(contract["config"])
    except ConfigError as e:
        raise ValueError(f"{CONTRACT_FILE}: its config does not load with this version of vidnets ({e})") from None
