"""Training recipes: YAML files parsed into typed, validated dataclasses.

One YAML file per paper recipe ships inside the package, in ``vidnets/configs/`` (``c3d.yaml``,
``tsn_rgb.yaml`` …), so ``vidnets train c3d`` works wherever vidnets is installed.
A recipe names its dataset layout with ``data.layout``; the few values a paper sets differently per
dataset sit in the same file under ``layouts:``, so there is no copy of a recipe per dataset::

    recipe: tsn_rgb
    source: "TSN, Wang et al. ECCV 2016, §3.3; authors' tsn_bn_inception_rgb_solver.prototxt"
    model: {name: tsn_bninception, kwargs: {modality: rgb}}
    data: {layout: ucf101, recipe: tsn_rgb}
    optim: {lr: 0.001, weight_decay: 0.0005, clip_grad_norm: 40}
    schedule: {kind: step, step_size: 1500, unit: iter}
    train: {max_iters: 3500}
    layouts:                      # applied on top when data.layout matches
      hmdb51: {schedule: {step_size: 1000}, train: {max_iters: 2500}}

Precedence, lowest first: dataclass defaults → the YAML file → its ``layouts[<data.layout>]`` overlay →
``--set key.path=value`` overrides (YAML syntax for the value). ``data.layout`` may itself be set on
the command line, and the matching overlay is then the one applied.

Every key is checked, down to the leaves: an unknown key or a value of the wrong type raises
:class:`ConfigError` naming the dotted key, what was expected (type or allowed values) and what was
found. ``model.kwargs`` are checked against the model builder's signature and
``data.train_kwargs`` / ``test_kwargs`` against the data recipe's dataset builder
(:func:`vidnets.engine.build.check_config_leaves`), before any data is read; ``vidnets train`` then
pushes one training-shaped input through the model on the meta device, so an impossible size
(C3D's fc6, Two-Stream's pooling) fails at config time. Models never see a config:
``model.kwargs`` become keyword arguments of the model's builder.

Hand-written rather than pydantic or OmegaConf structured configs: the dataclasses already carry
the types and ranges, the checks are short, the messages say exactly which dotted key is wrong and
what to do, and the builders' signatures (which neither library knows) decide the ``kwargs`` leaves.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from vidnets.engine.recipes import RECIPE_NAMES

__all__ = [
    "ConfigError",
    "ModelConfig",
    "DataConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TestConfig",
    "MultiTaskConfig",
    "Config",
    "load_config",
    "task_config",
    "task_names",
    "eval_task",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "parse_override",
    "find_recipe",
    "CONFIG_DIR",
]

#: the recipes shipped as package data
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class ConfigError(ValueError):
    """A config key is unknown, or its value has the wrong type or is not one of the allowed values."""


class _RangeError(ConfigError):
    """The value has the right type but lies outside the key's allowed range."""


def _choices(*values: str) -> dict:
    return {"choices": values}


def _range(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> dict:
    """Allowed numeric range of a key (``low_open``/``high_open``: the bound itself is excluded)."""
    return {"range": (low, high, low_open, high_open)}


def _range_text(spec: tuple) -> str:
    low, high, low_open, high_open = spec
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def _check_range(key: str, value: float, metadata: Any) -> None:
    import math

    spec = metadata.get("range") if metadata else None
    if isinstance(value, float) and not math.isfinite(value):
        raise _RangeError(f"{key}: expected a finite number{' ' + _range_text(spec) if spec else ''}, found {value!r}")
    if not spec:
        return
    low, high, low_open, high_open = spec
    if (low is not None and (value <= low if low_open else value < low)) or (
        high is not None and (value >= high if high_open else value > high)
    ):
        raise _RangeError(f"{key}: expected a number {_range_text(spec)}, found {value!r}")


@dataclass
class ModelConfig:
    name: str = "res3d18"
    #: keyword arguments of the builder, e.g. ``{width: 16, dropout: 0.5}``
    kwargs: dict = field(default_factory=dict)
    #: checkpoint to start from (fine-tuning); its classifier is replaced when class counts differ
    pretrained: Union[str, None] = None
    #: TSN partial BN: freeze every BatchNorm but the first (uses the model's own method)
    partial_bn: bool = False
    #: convert BatchNorm to SyncBatchNorm when training with several processes
    sync_bn: bool = False


@dataclass
class DataConfig:
    layout: str = field(default="ucf101", metadata=_choices("ucf101", "hmdb51", "kinetics", "folder", "rawframes"))
    root: str = ""
    annotations: Union[str, None] = None
    split: int = field(default=1, metadata=_range(1))
    train_subset: str = "train"
    test_subset: str = "test"
    #: data recipe of the recipe table, vidnets.engine.recipes (sampling, transforms, views)
    recipe: str = field(default="res3d", metadata=_choices(*RECIPE_NAMES))
    flow_root: Union[str, None] = None
    #: extra keyword arguments for the training / test datasets (e.g. ``{frames: 8, size: 64}``)
    train_kwargs: dict = field(default_factory=dict)
    test_kwargs: dict = field(default_factory=dict)
    #: class name → class name of its mirror image; a horizontally flipped training clip takes that label
    flip_label_map: dict = field(default_factory=dict)
    batch_size: int = field(default=8, metadata=_range(1))
    num_workers: int = field(default=2, metadata=_range(0))
    #: per-file metadata cache (vidnets.data.cache): "auto" = one file per dataset root under
    #: $VIDNETS_CACHE (default ~/.cache/vidnets), a path = that file, null = probe lazily, no cache
    metadata_cache: Union[str, None] = "auto"


@dataclass
class OptimConfig:
    lr: float = field(default=0.01, metadata=_range(0, low_open=True))
    momentum: float = field(default=0.9, metadata=_range(0, 1, high_open=True))
    weight_decay: float = field(default=5e-4, metadata=_range(0))
    nesterov: bool = False
    #: clip the global gradient norm to this value (TSN: 40 RGB, 20 flow); null = off
    clip_grad_norm: Union[float, None] = field(default=None, metadata=_range(0, low_open=True))
    #: gradient accumulation: batches per optimizer step (global batch = batch × accumulate × world)
    accumulate: int = field(default=1, metadata=_range(1))


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, counted in optimizer steps (``unit: iter``) or epochs.

    ``step``: ×gamma every ``step_size``; ``multistep``: ×gamma at each of ``milestones``;
    ``halving``: ×0.5 every ``step_size`` (C3D / Res3D on Sports-1M); ``constant``.
    ``warmup`` steps ramp linearly from ``warmup_factor``×lr to lr.
    """

    kind: str = field(default="step", metadata=_choices("constant", "step", "multistep", "halving"))
    unit: str = field(default="iter", metadata=_choices("iter", "epoch"))
    step_size: int = field(default=0, metadata=_range(0))
    milestones: list = field(default_factory=list)
    gamma: float = field(default=0.1, metadata=_range(0, low_open=True))
    warmup: int = field(default=0, metadata=_range(0))
    warmup_factor: float = field(default=0.1, metadata=_range(0, 1, low_open=True))


@dataclass
class TrainConfig:
    #: stop after this many epochs or optimizer steps, whichever comes first (at least one must be set)
    epochs: Union[int, None] = field(default=None, metadata=_range(1))
    max_iters: Union[int, None] = field(default=None, metadata=_range(1))
    precision: str = field(default="auto", metadata=_choices("auto", "fp32", "bf16", "fp16"))
    channels_last: bool = True
    seed: int = field(default=0, metadata=_range(0, 2**63 - 1))
    deterministic: bool = False
    device: str = "auto"
    out_dir: str = "runs/train"
    log_every: int = field(default=10, metadata=_range(1))
    #: evaluate on the test subset every N epochs (0: only at the end; -1: never)
    eval_every: int = field(default=1, metadata=_range(-1))
    #: checkpoint every N epochs and (if > 0) every N optimizer steps
    checkpoint_every: int = field(default=1, metadata=_range(0))
    checkpoint_every_iters: int = field(default=0, metadata=_range(0))
    tensorboard: bool = True
    progress: bool = True


@dataclass
class TestConfig:
    #: views (clips × crops) scored per forward pass; bounds memory for 250-view protocols
    view_chunk: int = field(default=10, metadata=_range(1))
    batch_size: int = field(default=2, metadata=_range(1))
    #: write per-view scores (``scores.npz``) for later fusion
    dump_scores: bool = True


#: per-task keys of ``multitask.tasks.<name>``: each overlays the same key of ``data``
TASK_DATA_KEYS = ("layout", "root", "annotations", "split", "train_subset", "test_subset", "flow_root")


@dataclass
class MultiTaskConfig:
    """Two-Stream multi-task learning ``[P:TS §4]``: one trunk, one softmax head per dataset.

    ``tasks`` maps head names, in head order, to the dataset each trains on; a task's keys
    (``layout``, ``root``, ``annotations``, ``split``, ``train_subset``, ``test_subset``,
    ``flow_root``) overlay ``data``, so the first task usually needs none::

        multitask:
          tasks:
            ucf101: {}                                    # data.layout / data.root as set
            hmdb51: {layout: hmdb51, root: /data/hmdb51, annotations: /data/hmdb51_splits}

    Empty ``tasks`` means ordinary single-dataset training. ``mixing`` sets each dataset's share
    of a batch stream (:func:`vidnets.methods.multitask.task_probabilities`): ``proportional``
    (default: every video once per epoch), ``balanced``, or a list of weights in task order.
    ``eval_task`` names the head whose test metrics are the run's ``test_*`` figures and which
    ``vidnets test`` / ``vidnets predict`` use (default: the first task).
    """

    tasks: dict = field(default_factory=dict)
    mixing: Union[str, list] = "proportional"
    eval_task: Union[str, None] = None


@dataclass
class Config:
    recipe: str = "custom"
    #: where the recipe comes from (paper section, authors' solver)
    source: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    multitask: MultiTaskConfig = field(default_factory=MultiTaskConfig)


# -- parsing ----------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _check_value(key: str, value: Any, tp: Any, metadata: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _check_value(key, value, arg, metadata)
            except _RangeError:
                raise  # the type fits; the value does not
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{key}: expected {_type_name(tp)}, found {value!r} ({type(value).__name__})")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            _check_range(key, value, metadata)
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_range(key, float(value), metadata)
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            choices = metadata.get("choices") if metadata else None
            if choices and value not in choices:
                raise ConfigError(f"{key}: expected one of {', '.join(choices)}; found {value!r}")
            return value
    elif tp in (list, dict):
        if isinstance(value, tp):
            return copy.deepcopy(value)
    raise ConfigError(f"{key}: expected {_type_name(tp)}, found {value!r} ({type(value).__name__})")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, found {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]}; allowed keys{' in ' + prefix if prefix else ''}: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value if value is not None else {}, key)
        else:
            kwargs[name] = _check_value(key, value, tp, fields[name].metadata)
    return cls(**kwargs)


#: builder / dataset keyword arguments that count things or sizes: each must be a positive int
#: (or a list of them, e.g. ``size: [112, 112]``)
POSITIVE_KWARGS = (
    "width",
    "frames",
    "size",
    "crop",
    "stride",
    "segments",
    "views",
    "crops",
    "new_length",
    "num_segments",
    "length",
    "decode_threads",
    "probe_workers",
    "in_channels",
    "growth_rate",
)
#: builder keyword arguments that are probabilities
PROBABILITY_KWARGS = ("dropout", "drop_rate")


def _check_kwargs(prefix: str, kwargs: dict) -> None:
    for name, value in kwargs.items():
        key = f"{prefix}.{name}"
        values = value if isinstance(value, (list, tuple)) else [value]
        if name in POSITIVE_KWARGS and value is not None:
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
                raise ConfigError(
                    f"{key}: expected a positive int{' or a list of them' if name == 'size' else ''}, found {value!r}"
                )
        if name in PROBABILITY_KWARGS and value is not None:
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
                raise ConfigError(f"{key}: expected a number >= 0 and < 1, found {value!r}")


def _validate(cfg: Config) -> None:
    _check_kwargs("model.kwargs", cfg.model.kwargs)
    _check_kwargs("data.train_kwargs", cfg.data.train_kwargs)
    _check_kwargs("data.test_kwargs", cfg.data.test_kwargs)
    if cfg.train.epochs is None and cfg.train.max_iters is None:
        raise ConfigError("train.epochs / train.max_iters: set at least one of them")
    if cfg.schedule.kind in ("step", "halving") and cfg.schedule.step_size <= 0:
        raise ConfigError(
            f"schedule.step_size: expected a positive int for kind {cfg.schedule.kind}, found {cfg.schedule.step_size}"
        )
    if cfg.schedule.kind == "multistep":
        if not cfg.schedule.milestones or not all(isinstance(m, int) and m > 0 for m in cfg.schedule.milestones):
            raise ConfigError(
                f"schedule.milestones: expected a list of positive ints, found {cfg.schedule.milestones!r}"
            )
    if cfg.optim.accumulate < 1:
        raise ConfigError(f"optim.accumulate: expected an int >= 1, found {cfg.optim.accumulate}")
    if cfg.test.view_chunk < 1:
        raise ConfigError(f"test.view_chunk: expected an int >= 1, found {cfg.test.view_chunk}")
    _validate_multitask(cfg.multitask)
    from vidnets.engine.build import check_config_leaves  # the builders' own signatures: engine.build knows them

    check_config_leaves(cfg)


def _validate_multitask(mt: MultiTaskConfig) -> None:
    if not mt.tasks:
        if mt.eval_task is not None:
            raise ConfigError(f"multitask.eval_task: {mt.eval_task!r} given, but multitask.tasks is empty")
        return
    if len(mt.tasks) < 2:
        raise ConfigError(
            f"multitask.tasks: expected at least two tasks (one head per dataset), found {list(mt.tasks)}"
        )
    data_hints = typing.get_type_hints(DataConfig)
    data_fields = {f.name: f for f in dataclasses.fields(DataConfig)}
    for name, overlay in mt.tasks.items():
        key = f"multitask.tasks.{name}"
        if not isinstance(name, str) or not name:
            raise ConfigError(f"multitask.tasks: task names must be non-empty strings, found {name!r}")
        if overlay is None:
            mt.tasks[name] = overlay = {}
        if not isinstance(overlay, dict):
            raise ConfigError(
                f"{key}: expected a mapping of data keys ({', '.join(TASK_DATA_KEYS)}), found {overlay!r}"
            )
        for k, v in overlay.items():
            if k not in TASK_DATA_KEYS:
                raise ConfigError(f"unknown key {key}.{k}; allowed keys in {key}: {', '.join(TASK_DATA_KEYS)}")
            overlay[k] = _check_value(f"{key}.{k}", v, data_hints[k], data_fields[k].metadata)
    if isinstance(mt.mixing, str):
        if mt.mixing not in ("proportional", "balanced"):
            raise ConfigError(
                f"multitask.mixing: expected proportional, balanced or a list of "
                f"{len(mt.tasks)} weights; found {mt.mixing!r}"
            )
    elif (
        len(mt.mixing) != len(mt.tasks)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in mt.mixing)
        or sum(mt.mixing) <= 0
    ):
        raise ConfigError(
            f"multitask.mixing: expected {len(mt.tasks)} non-negative weights (task order "
            f"{', '.join(mt.tasks)}), not all zero; found {mt.mixing!r}"
        )
    if mt.eval_task is not None and mt.eval_task not in mt.tasks:
        raise ConfigError(f"multitask.eval_task: expected one of {', '.join(mt.tasks)}, found {mt.eval_task!r}")


def task_names(cfg: Config) -> list[str]:
    """The multi-task head names in order; empty for single-dataset training."""
    return list(cfg.multitask.tasks)


def eval_task(cfg: Config) -> str | None:
    """The head that ``vidnets test`` / ``predict`` use and whose metrics a run reports (multi-task only)."""
    names = task_names(cfg)
    return (cfg.multitask.eval_task or names[0]) if names else None


def task_config(cfg: Config, task: str) -> Config:
    """``cfg`` with ``data`` overlaid by ``multitask.tasks[task]``: the config of that task's dataset."""
    if task not in cfg.multitask.tasks:
        raise ConfigError(f"multitask task {task!r}: expected one of {', '.join(cfg.multitask.tasks) or 'none'}")
    data = dataclasses.replace(cfg.data, **cfg.multitask.tasks[task])
    return dataclasses.replace(cfg, data=data)


def config_from_dict(data: dict) -> Config:
    """Typed, validated :class:`Config` from a plain mapping (``layouts`` must already be applied)."""
    cfg = _build(Config, data, "")
    _validate(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    """Plain nested dict (YAML/checkpoint friendly) of ``cfg``."""
    return dataclasses.asdict(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.01"`` → ``(["optim", "lr"], 0.01)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected key.path=value, e.g. optim.lr=0.01")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({e})") from None
    return key.strip().split("."), value


def _deep_merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("kwargs",):
            out[k] = _deep_merge(out[k], v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):  # builder kwargs merge key by key too
            out[k] = {**out[k], **copy.deepcopy(v)}
        else:
            out[k] = copy.deepcopy(v)
    return out


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``--set`` overrides to a plain config mapping (returns a new mapping)."""
    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {text!r}: {part} is a value, not a section")
            node = nxt
        node[path[-1]] = value
    return out


def find_recipe(name_or_path: str | Path) -> Path:
    """A YAML path as given, or a recipe name: the packaged ``vidnets/configs/<name>.yaml``, else
    ``./configs/<name>.yaml`` (a user's own recipes)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / f"{name_or_path}.yaml", Path.cwd() / "configs" / f"{name_or_path}.yaml"):
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.is_dir() else []
    raise ConfigError(f"config {name_or_path}: no such file or recipe; recipes: {', '.join(known) or 'none found'}")


def load_config(
    source: str | Path | dict | None = None, overrides: list[str] | tuple = (), profile: str | None = None
) -> Config:
    """Read a recipe (path, recipe name, mapping or None for defaults), apply its layout overlay, the
    named ``profile`` overlay (``profiles.<name>`` in the recipe, e.g. ``cpu``) and the ``--set``s."""
    if source is None:
        data: dict = {}
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    else:
        path = find_recipe(source)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config {path}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config {path}: expected a mapping at the top level, found {type(data).__name__}")
    overrides = list(overrides)
    layouts = _overlays(data, "layouts")
    profiles = _overlays(data, "profiles")
    # Which layout? The command line wins over the file.
    probe = apply_overrides(data, overrides)
    layout = (probe.get("data") or {}).get("layout", DataConfig.layout)
    allowed = DataConfig.__dataclass_fields__["layout"].metadata["choices"]
    for name in layouts:
        if name not in allowed:
            raise ConfigError(f"layouts.{name}: unknown layout; expected one of {', '.join(allowed)}")
    if layout in layouts:
        data = _deep_merge(data, layouts[layout])
    if profile:
        if profile not in profiles:
            raise ConfigError(
                f"--profile {profile}: this recipe has no such profile; available: {', '.join(profiles) or 'none'}"
            )
        data = _deep_merge(data, profiles[profile])
    data = apply_overrides(data, overrides)
    return config_from_dict(data)


def _overlays(data: dict, key: str) -> dict:
    overlays = data.pop(key, None) or {}
    if not isinstance(overlays, dict) or not all(isinstance(v, dict) for v in overlays.values()):
        raise ConfigError(f"{key}: expected a mapping of name → overrides, found {overlays!r}")
    return overlays


def dump_config(cfg: Config) -> str:
    """YAML text of ``cfg`` (what a run directory's ``config.yaml`` holds)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
