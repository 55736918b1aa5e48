"""Config → objects: the datasets and the model a recipe describes (the only place configs are read).

``data`` keys become arguments of ``load_annotations`` and of the data recipe's ``build_dataset``;
``model.kwargs`` become keyword arguments of the model builder. Nothing downstream sees the config.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from vidnets.engine.checkpoint import read_checkpoint
from vidnets.engine.config import Config, ConfigError, eval_task, task_config
from vidnets.engine.recipes import data_recipe

__all__ = [
    "load_records",
    "flip_label_indices",
    "build_datasets",
    "build_test_dataset",
    "build_model",
    "check_config_leaves",
    "check_input_shape",
    "load_pretrained",
    "metadata_cache",
    "model_from_checkpoint",
    "select_task",
    "holdout_split",
]


def holdout_split(records: list, subset: str, period: int = 5) -> list:
    """For layouts without split files (``folder``): every ``period``-th video of each class is test.

    Deterministic (by the sorted order the loader returns), stratified, and disjoint.
    """
    position: dict[int, int] = {}
    out = []
    for rec in records:
        i = position.get(rec.label, 0)
        position[rec.label] = i + 1
        is_test = i % period == period - 1
        if is_test == (subset != "train"):
            out.append(rec)
    return out


def load_records(cfg: Config, subset: str) -> tuple[list, list[str]]:
    """The (records, class_names) of ``subset`` ("train" / "test") for ``cfg.data``."""
    from vidnets.data.datasets import load_annotations

    d = cfg.data
    if not d.root:
        raise ConfigError("data.root: expected the dataset folder (e.g. --set data.root=/data/UCF-101), found ''")
    if not Path(d.root).exists():
        raise ConfigError(f"data.root: {d.root} does not exist")
    name = d.train_subset if subset == "train" else d.test_subset
    records, classes = load_annotations(d.layout, d.root, split=d.split, subset=name, annotations=d.annotations)
    if d.layout == "folder":
        records = holdout_split(records, subset)
    if not records:
        raise ConfigError(f"data: no {subset} videos found for layout {d.layout} under {d.root} (split {d.split})")
    return records, classes


def metadata_cache(cfg: Config):
    """The :class:`~vidnets.data.cache.MetadataCache` of ``cfg.data`` (None when ``data.metadata_cache`` is null).

    ``"auto"`` keeps one cache file per dataset root under ``$VIDNETS_CACHE``, so an index is
    probed once (each distinct file, in parallel) and later runs start from the cache."""
    import hashlib

    from vidnets.data.cache import MetadataCache, default_cache_dir

    setting = cfg.data.metadata_cache
    if setting is None:
        return None
    if setting == "auto":
        root = str(Path(cfg.data.root).resolve())
        setting = default_cache_dir() / f"metadata-{hashlib.sha1(root.encode()).hexdigest()[:16]}.json"
    return MetadataCache(setting)


def _dataset(cfg: Config, records: list, *, train: bool, **extra):
    kwargs = {**(cfg.data.train_kwargs if train else cfg.data.test_kwargs), **extra}
    recipe = data_recipe(cfg.data.recipe)
    if not recipe.reads_flow and "cache" not in kwargs:
        cache = metadata_cache(cfg)
        if cache is not None:
            kwargs["cache"] = cache
            kwargs.setdefault("probe_workers", max(4, cfg.data.num_workers))
    if recipe.reads_flow and not cfg.data.flow_root:
        raise ConfigError(
            f"data.flow_root: recipe {cfg.data.recipe} reads stored optical flow; "
            "set data.flow_root (see `vidnets flow extract`)"
        )
    return recipe.build_dataset(records, train=train, flow_root=cfg.data.flow_root, **kwargs)


def flip_label_indices(flip_label_map: dict, classes: list[str]) -> dict[int, int]:
    """``data.flip_label_map`` (class name → class name) as class indices, made symmetric
    (``{a: b}`` also maps b to a); a name that is not a class, or a contradiction, is a ConfigError."""
    lookup = {name: i for i, name in enumerate(classes)}
    out: dict[int, int] = {}
    for a, b in flip_label_map.items():
        for name in (a, b):
            if name not in lookup:
                shown = ", ".join(classes[:8]) + (", …" if len(classes) > 8 else "")
                raise ConfigError(
                    f"data.flip_label_map: {name!r} is not a class of this dataset; expected class names ({shown})"
                )
        for x, y in ((lookup[a], lookup[b]), (lookup[b], lookup[a])):
            if out.setdefault(x, y) != y:
                raise ConfigError(
                    f"data.flip_label_map: {classes[x]!r} maps to both {classes[out[x]]!r} and "
                    f"{classes[y]!r}; expected symmetric pairs"
                )
    return out


def build_datasets(cfg: Config, *, with_test: bool = True):
    """``(train_set, test_set or None, class_names)``."""
    train_records, classes = load_records(cfg, "train")
    flip_map = {}
    if cfg.data.flip_label_map:
        if data_recipe(cfg.data.recipe).reads_flow:
            raise ConfigError(
                f"data.flip_label_map: not supported by the flow recipe {cfg.data.recipe}; "
                "set data.train_kwargs.flip=false instead"
            )
        flip_map = {"flip_label_map": flip_label_indices(cfg.data.flip_label_map, classes)}
    train_set = _dataset(cfg, train_records, train=True, **flip_map)
    test_set = None
    if with_test:
        test_records, test_classes = load_records(cfg, "test")
        if test_classes != classes:
            raise ConfigError(f"data: train and test class lists differ ({len(classes)} vs {len(test_classes)})")
        test_set = _dataset(cfg, test_records, train=False)
    return train_set, test_set, classes


def build_test_dataset(cfg: Config, records: list | None = None, **extra):
    """The test-protocol dataset of ``cfg`` (for ``records`` if given, else the test subset)."""
    classes = None
    if records is None:
        records, classes = load_records(cfg, "test")
    return _dataset(cfg, records, train=False, **extra), classes


def build_model(cfg: Config, num_classes: int, heads: dict[str, int] | None = None) -> tuple[nn.Module, dict]:
    """The model of ``cfg.model`` with ``num_classes`` outputs, or one head per task (``heads``:
    ``{task: classes}``, for multi-task learning); returns it and its builder kwargs.

    The weights are initialised after seeding with ``train.seed``, so two runs with the same seed
    start from the same model."""
    import inspect

    from vidnets.engine.checkpoint import seed_everything
    from vidnets.models import create, list_models, model_info

    if cfg.model.name not in list_models():
        raise ConfigError(f"model.name: unknown model {cfg.model.name!r}; available: {', '.join(list_models())}")
    kwargs = dict(cfg.model.kwargs)
    if heads:
        if "heads" not in inspect.signature(model_info(cfg.model.name).builder).parameters:
            with_heads = [m for m in list_models() if "heads" in inspect.signature(model_info(m).builder).parameters]
            raise ConfigError(
                f"multitask.tasks: model {cfg.model.name} has a single classifier; multi-task "
                f"learning needs a model with task heads ({', '.join(with_heads)})"
            )
        kwargs["heads"] = dict(heads)
    seed_everything(cfg.train.seed)
    try:
        model = create(cfg.model.name, num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise ConfigError(f"model.kwargs: {cfg.model.name} does not accept {kwargs} ({e})") from None
    if cfg.model.pretrained:
        load_pretrained(model, cfg.model.pretrained)
    return model, kwargs


#: the spatial test crops the multi-crop transforms know (centre; 3 along the long side; 4 corners +
#: centre; those and their mirrors)
CROP_COUNTS = (1, 3, 5, 10)


def builder_arguments(builder) -> set[str] | None:
    """The keyword arguments a model builder takes; one that passes ``**kwargs`` on to the class it
    returns takes that class's too. None when they cannot be told (``**kwargs`` all the way)."""
    import inspect
    import typing

    parameters = inspect.signature(builder).parameters
    names = {n for n, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return names
    try:
        returned = typing.get_type_hints(builder).get("return")
    except (NameError, TypeError):
        return None
    if not isinstance(returned, type):
        return None
    inner = builder_arguments(returned.__init__)
    return None if inner is None else (names | inner) - {"self"}


def check_config_leaves(cfg: Config) -> None:
    """Raise :class:`ConfigError` for a ``model.kwargs`` key the model's builder does not take, a
    ``data.train_kwargs`` / ``test_kwargs`` key the data recipe's dataset builder does not take, or a
    ``crops`` count no transform makes; each names the key and lists the allowed ones. Reads no data.
    """
    from vidnets.models import list_models, model_info

    if cfg.model.name in list_models():
        allowed = builder_arguments(model_info(cfg.model.name).builder)
        for key in cfg.model.kwargs if allowed is not None else ():
            if key not in allowed:
                raise ConfigError(
                    f"model.kwargs.{key}: {cfg.model.name} takes no such argument; allowed: "
                    f"{', '.join(sorted(allowed - {'num_classes', 'heads'}))}"
                )
    recipe = data_recipe(cfg.data.recipe)
    allowed_data = sorted(recipe.override_keys() - {"cache", "flip_label_map"})
    for field_name in ("train_kwargs", "test_kwargs"):
        kwargs = getattr(cfg.data, field_name)
        for key in kwargs:
            if key not in allowed_data:
                raise ConfigError(
                    f"data.{field_name}.{key}: the {recipe.name} dataset takes no such setting; "
                    f"allowed: {', '.join(allowed_data)}"
                )
        if "crops" in kwargs and kwargs["crops"] not in CROP_COUNTS:
            raise ConfigError(
                f"data.{field_name}.crops: expected one of {', '.join(map(str, CROP_COUNTS))}, "
                f"found {kwargs['crops']!r}"
            )


def check_input_shape(cfg: Config) -> None:
    """Raise :class:`ConfigError` when the model cannot take the training clips the data recipe
    makes (e.g. C3D's fc6 at another clip length or crop), before any video is read.

    The model is built on the meta device (no memory, no compute) and one input of the training
    shape is pushed through it. Recipes with segments (TSN) are not checked here; a flow stack's
    channels follow the model's own ``flow_length``, so only its crop is checked.
    """
    recipe = data_recipe(cfg.data.recipe)
    if recipe.segments or cfg.multitask.tasks:
        return
    frames, crop = _training_frames_and_crop(cfg)
    with torch.device("meta"):
        model, _ = build_model(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pretrained=None)), 2)
        error = _input_error(model, frames, crop)
        if error is None:
            return
        hint = " (C3D: model.kwargs.clip_len / crop_size)" if "fc6" in error or cfg.model.name.startswith("c3d") else ""
        if "too small" in error:
            size = model.default_input[-1]
            hint += (
                f"; its pooling needs larger crops: it is built for {size}×{size}"
                f"{' (model.kwargs.input_size)' if 'input_size' in cfg.model.kwargs else ''}"
            )
        raise ConfigError(
            f"model {cfg.model.name} cannot take the {frames}-frame {crop}×{crop} training clips of "
            f"data.recipe {cfg.data.recipe}: {error}. Make model.kwargs match "
            f"data.train_kwargs (frames, crop){hint}"
        )


def _training_frames_and_crop(cfg: Config) -> tuple[int, int]:
    """Frames per clip and crop size of the training clips ``cfg``'s data recipe makes."""
    recipe = data_recipe(cfg.data.recipe)
    if recipe.reads_flow:
        from vidnets.flow.datasets import RECIPES as FLOW_SETTINGS

        return 1, cfg.data.train_kwargs.get("crop", FLOW_SETTINGS[recipe.name]["crop"])
    defaults = recipe.defaults()
    return cfg.data.train_kwargs.get("frames", defaults.frames), cfg.data.train_kwargs.get("crop", defaults.crop)


def _shape_for(model: nn.Module, frames: int, crop: int) -> tuple[int, ...]:
    shape = list(model.default_input)
    if len(shape) == 4:
        shape[1] = frames
    shape[-2:] = [crop, crop]
    return tuple(shape)


def training_input_shape(cfg: Config, model: nn.Module) -> tuple[int, ...]:
    """The shape of one training input of ``model`` under ``cfg`` (no batch dimension): the model's
    ``default_input`` with the recipe's clip length and crop."""
    return _shape_for(model, *_training_frames_and_crop(cfg))


def _input_error(model: nn.Module, frames: int, crop: int) -> str | None:
    """The first line of the error ``model`` raises on a training-shaped input, or None (meta device)."""
    shape = _shape_for(model, frames, crop)
    try:
        model(torch.zeros(2, *shape))
    except (RuntimeError, ValueError) as e:
        return str(e).splitlines()[0]
    return None


def load_pretrained(model: nn.Module, path: str | Path) -> list[str]:
    """Fine-tuning start: copy matching weights; layers whose shape differs (the classifier) stay new.

    A first convolution that differs only in input channels (RGB weights → flow / RGB-difference
    model) gets TSN's cross-modality initialisation: the RGB kernel averaged over its input channels
    and replicated. Returns the names of the tensors that were not copied.
    """
    from vidnets.models.base import cross_modality_weight

    state = read_checkpoint(path)["model"]
    own = model.state_dict()
    first = getattr(model, "first_conv", "")
    key = f"{first}.weight"
    if (
        first
        and key in state
        and key in own
        and state[key].shape != own[key].shape
        and state[key].shape[0] == own[key].shape[0]
        and state[key].shape[2:] == own[key].shape[2:]
    ):
        state = {**state, key: cross_modality_weight(state[key], own[key].shape[1])}
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"model.pretrained {path}: no tensor matches {type(model).__name__}")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def model_from_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a vidnets checkpoint was trained as, with its weights; returns (model, state)."""
    from vidnets.models import create

    state = read_checkpoint(path, map_location=device)
    if state.get("format") == "state_dict" or not state.get("model_name"):
        raise ValueError(f"checkpoint {path}: has no model name / class names (not written by vidnets train)")
    from vidnets.engine.checkpoint import CheckpointError, nonfinite_tensors

    bad = nonfinite_tensors(state["model"])
    if bad:
        raise CheckpointError(
            f"checkpoint {path}: {len(bad)} model tensors hold NaN or inf (e.g. {bad[0]}); "
            "its predictions would be meaningless - use an earlier checkpoint or retrain"
        )
    classes = state.get("class_names") or []
    model = create(state["model_name"], num_classes=len(classes), **state.get("model_kwargs", {}))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state


def select_task(model: nn.Module, state: dict, cfg: Config) -> tuple[nn.Module, Config, list[str]]:
    """What testing a checkpoint means: ``(model, data config, class names)``.

    A single-task checkpoint is returned as is. For a multi-task one, ``multitask.eval_task``
    (default: the first task) picks the head; the model is viewed through that head and the
    config's ``data`` is that task's dataset.
    """
    task = eval_task(cfg)
    task_classes = state.get("task_classes") or {}
    if task is None or not task_classes:
        return model, cfg, list(state.get("class_names") or [])
    from vidnets.models.base import TaskView

    if task not in task_classes:
        raise ValueError(f"multitask.eval_task {task!r}: the checkpoint has heads {', '.join(task_classes)}")
    return TaskView(model, task), task_config(cfg, task), list(task_classes[task])
