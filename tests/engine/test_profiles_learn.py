"""A recipe's ``--profile cpu`` learns: trained on ``vidnets synth`` data as it stands, it reaches a
test accuracy well above chance (for the recipes below; every recipe's profile is checked to build).

Data, made once for the module: 4 classes × 32 videos (96 train, 32 test) of 16 frames at 32²,
chance 25 %. The 3D recipes train on the "motion" family (the class is how the view moves; a
single frame is at chance), the single-frame RGB recipes on the "appearance" family (the class is
the shape and colour of the objects seen; the motion is random), TSN's flow stream on the DIS
flow of the motion set, extracted with ``vidnets flow extract --method dis --short-side 72``
(CNN-M's pools need crops of at least 64²).

Each threshold sits well below the worst seed measured on the CPU profile (seed = ``train.seed``;
the data stay the same), on a 2-vCPU Intel Xeon with AMX (KVM guest) shared with other jobs, so
wall times were several times what an idle machine takes:

===================  ==========  ======================  =========
recipe               data        video top-1 (seeds)     threshold
===================  ==========  ======================  =========
res3d                motion      84.4 % (0), 81.2 % (1)  60 %
c3d                  motion      78.1 % (0), 75.0 % (1)  55 %
two_stream_spatial   appearance  100 % (0), 100 % (1)    75 %
tsn_rgb              appearance  100 % (0), 96.9 % (1)   75 %
tsn_flow             flow        81.2 % (0), 100 % (1)   60 %
two_stream_temporal  flow*       100 % (0), 100 % (1)    75 %
two_stream_multitask flow* + 2nd  100 % (0), 100 % (1)    75 % (each head)
===================  ==========  ======================  =========

(*) with the paper's per-field mean subtraction off: the synthetic classes are camera motions,
which that subtraction removes by design. The multi-task run's second task ("hmdb51" head) is a
second motion set, 3 classes × 16 videos (12 test) with seed 1, and its DIS flow; both heads
reached 100 % on their test videos.

Not here yet (see configs/README.md for the runs): p3d and t3d
fit their training videos but stayed near chance on the test videos (they memorise the scenes
rather than learn the motion at this scale); their settings still have to be found before a test
can assert that they learn.
"""

from __future__ import annotations

import json

import pytest

from vidnets.cli import main
from vidnets.data.synthetic import generate_dataset
from vidnets.engine.build import check_input_shape
from vidnets.engine.config import ConfigError, load_config

SIZES = dict(videos_per_class=32, frames=16, size=32, seed=0)
# video top-1 thresholds (module docstring)
RES3D, C3D, SPATIAL, TEMPORAL, TSN_RGB, TSN_FLOW = 0.60, 0.55, 0.75, 0.75, 0.75, 0.60
MULTITASK = 0.75  # each head, on its own task's test videos
NO_MEAN_SUBTRACTION = {"data.train_kwargs.mean_subtraction": "false", "data.test_kwargs.mean_subtraction": "false"}

# recipe → (data set, extra --set values, video top-1 it must beat); see the module docstring for
# the recipes whose profiles are not here yet
RECIPES = {
    "res3d": ("motion", {}, RES3D),
    "c3d": ("motion", {}, C3D),
    "two_stream_spatial": ("appearance", {}, SPATIAL),
    "two_stream_temporal": ("flow", NO_MEAN_SUBTRACTION, TEMPORAL),
    "two_stream_multitask": ("two tasks", NO_MEAN_SUBTRACTION, MULTITASK),
    "tsn_rgb": ("appearance", {}, TSN_RGB),
    "tsn_flow": ("flow", {}, TSN_FLOW),
}


def _extract_flow(root, out):
    videos = sorted(str(p) for p in root.glob("*/*.avi"))
    assert main(["flow", "extract", *videos, "--out", str(out), "--method", "dis", "--short-side", "72"]) == 0
    return out


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The data of every recipe, made once: ``{name: {--set key: value}}``."""
    base = tmp_path_factory.mktemp("profiles_data")
    motion = generate_dataset(base / "motion", num_classes=4, **SIZES)
    appearance = generate_dataset(base / "appearance", family="appearance", num_classes=4, **SIZES)
    flow = _extract_flow(motion, base / "flow")
    second = generate_dataset(base / "second", num_classes=3, **{**SIZES, "videos_per_class": 16, "seed": 1})
    second_flow = _extract_flow(second, base / "second_flow")
    return {
        "motion": {"data.root": motion},
        "appearance": {"data.root": appearance},
        "flow": {"data.root": motion, "data.flow_root": flow},
        "two tasks": {
            "data.root": motion,
            "data.flow_root": flow,
            "multitask.tasks.hmdb51.layout": "ucf101",
            "multitask.tasks.hmdb51.root": second,
            "multitask.tasks.hmdb51.flow_root": second_flow,
        },
    }


def _train(recipe: str, sets: dict, out) -> None:
    args = ["train", recipe, "--profile", "cpu", "--out", str(out)]
    for key, value in {**sets, "train.progress": "false", "train.tensorboard": "false"}.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0


ALL_RECIPES = [
    "c3d",
    "res3d",
    "p3d",
    "t3d",
    "two_stream_spatial",
    "two_stream_temporal",
    "two_stream_multitask",
    "tsn_rgb",
    "tsn_flow",
]


@pytest.mark.parametrize("recipe", ALL_RECIPES)
def test_every_recipe_has_a_cpu_profile_its_model_takes(recipe):
    """The config-time input check passes with each profile's size knobs, and still catches a
    crop the shrunken net cannot take."""
    cfg = load_config(recipe, ["data.root=/videos", "data.flow_root=/flow"], profile="cpu")
    assert cfg.train.epochs <= 12 and cfg.optim.accumulate == 1 and cfg.train.max_iters is None
    check_input_shape(cfg)
    if recipe == "two_stream_spatial":
        with pytest.raises(ConfigError, match="cannot take the 1-frame 32×32 training clips"):
            check_input_shape(load_config(recipe, ["data.root=/v", "data.train_kwargs.crop=32"], profile="cpu"))


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_cpu_profile_learns(recipe, datasets, tmp_path):
    data, extra, threshold = RECIPES[recipe]
    _train(recipe, {**datasets[data], **extra}, tmp_path)
    if recipe == "two_stream_multitask":  # one report per head: (its chance, its test videos)
        reports = {"test_ucf101_metrics.json": (0.25, 32), "test_hmdb51_metrics.json": (1 / 3, 12)}
    else:
        reports = {"test_metrics.json": (0.25, 32)}
    for name, (chance, videos) in reports.items():
        metrics = json.loads((tmp_path / name).read_text())
        assert metrics["chance"] == pytest.approx(chance) and metrics["videos"] == videos, name
        assert metrics["video_top1"] > threshold, (name, metrics)
