"""A recipe's ``--profile cpu`` learns: trained on ``vidnets synth`` data as it stands, it reaches a
test accuracy well above chance (for the recipes below; every recipe's profile is checked to build).

Data, made once for the module: 4 classes × 32 videos (96 train, 32 test) of 16 frames at 32² of
the "motion" family (the class is how the view moves; a single frame is at chance), chance 25 %.
Res3D trains on the videos, TSN's flow stream on their DIS flow, extracted with ``vidnets flow
extract --method dis --short-side 72`` (CNN-M's pools need crops of at least 64²). (The
single-frame RGB recipes would train on the "appearance" family, whose classes a single frame
shows.)

Each threshold sits well below the worst seed measured on the CPU profile (seed = ``train.seed``;
the data stay the same). Measured with this module's data on a 2-vCPU Intel Xeon with AMX (KVM
guest) shared with other jobs (load 6 to 15 on its 2 cores, so wall times were several times what an
idle machine takes; the CPU time is user + sys of the ``vidnets train`` process, one intra-op thread):

===================  ==========  ======================  =========  =============
recipe               data        video top-1 (seeds)     threshold  CPU time
===================  ==========  ======================  =========  =============
res3d                motion      84.4 % (0*), 81.2 % (1)  60 %       32 s (seed 1)
tsn_flow             flow        81.2 % (0), 100 % (1)   60 %       41 s, 62 s
===================  ==========  ======================  =========  =============

(*) seed 0 of res3d ran with two intra-op threads.

Not here yet (see configs/README.md for the runs): two_stream_temporal's profile reached 68.8 %
with seed 0 but stayed at chance (25.0 %) with seed 1, so no threshold holds for it; the profiles
of c3d, p3d, t3d, two_stream_spatial and tsn_rgb did not learn in the runs made so far (training accuracy near
chance, or the non-finite-gradient guard stopping C3D on 0-255 inputs, P3D's loss growing at
lr 0.05 and 0.01), and two_stream_multitask's was not measured to the end; each needs its
settings found before a test can assert that it learns.
"""

from __future__ import annotations

import json

import pytest

from vidnets.cli import main
from vidnets.data.synthetic import generate_dataset
from vidnets.engine.build import check_input_shape
from vidnets.engine.config import ConfigError, load_config

SIZES = dict(videos_per_class=32, frames=16, size=32, seed=0)
RES3D, TSN_FLOW = 0.60, 0.60  # video top-1 thresholds (module docstring)

# recipe → (data set, extra --set values, video top-1 it must beat); see the module docstring for
# the recipes whose profiles are not here yet
RECIPES = {
    "res3d": ("motion", {}, RES3D),
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
    flow = _extract_flow(motion, base / "flow")
    return {"motion": {"data.root": motion}, "flow": {"data.root": motion, "data.flow_root": flow}}


def _train(recipe: str, sets: dict, out) -> None:
    args = ["train", recipe, "--profile", "cpu", "--out", str(out)]
    for key, value in {**sets, "train.progress": "false", "train.tensorboard": "false"}.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0


ALL_RECIPES = ["c3d", "res3d", "p3d", "t3d", "two_stream_spatial", "two_stream_temporal", "two_stream_multitask",
               "tsn_rgb", "tsn_flow"]


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
    metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert metrics["chance"] == 0.25 and metrics["videos"] == 32
    assert metrics["video_top1"] > threshold, metrics
