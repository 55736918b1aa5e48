"""YAML recipes → typed configs; clear errors for unknown or ill-typed keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidnets.engine.config import CONFIG_DIR, Config, ConfigError, load_config

RECIPES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
LAYOUTS = ["ucf101", "hmdb51", "kinetics", "folder"]


def test_there_is_a_recipe_per_paper():
    assert set(RECIPES) >= {"c3d", "two_stream_spatial", "two_stream_temporal", "tsn_rgb", "tsn_flow", "p3d", "t3d",
                            "res3d"}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_loads_on_every_layout(recipe, layout):
    cfg = load_config(recipe, [f"data.layout={layout}"])
    assert isinstance(cfg, Config) and cfg.data.layout == layout
    assert cfg.source, f"{recipe}.yaml must cite its source"
    from vidnets.models import list_models

    assert cfg.model.name in list_models()


def test_layout_overlay_and_set_precedence():
    cfg = load_config("tsn_rgb", ["data.layout=hmdb51"])
    assert cfg.schedule.step_size == 1000 and cfg.train.max_iters == 2500
    cfg = load_config("tsn_rgb", ["data.layout=hmdb51", "train.max_iters=10"])
    assert cfg.train.max_iters == 10
    assert load_config("tsn_rgb").schedule.step_size == 1500
    assert load_config("c3d", ["data.layout=kinetics"]).schedule.kind == "halving"


def test_set_parses_yaml_values():
    cfg = load_config("res3d", ["optim.lr=0.02", "schedule.milestones=[3, 5]", "model.kwargs={width: 16}",
                                "model.pretrained=null"])
    assert cfg.optim.lr == 0.02 and cfg.schedule.milestones == [3, 5] and cfg.model.kwargs == {"width": 16}


@pytest.mark.parametrize("override, message", [
    (["optim.lrr=0.1"], r"unknown key optim\.lrr; allowed keys in optim: lr, momentum"),
    (["bogus.x=1"], r"unknown key bogus"),
    (["optim.lr=fast"], r"optim\.lr: expected float, found 'fast'"),
    (["data.batch_size=2.5"], r"data\.batch_size: expected int, found 2\.5"),
    (["train.precision=fp8"], r"train\.precision: expected one of auto, fp32, bf16, fp16; found 'fp8'"),
    (["data.layout=youtube"], r"data\.layout: expected one of ucf101, hmdb51"),
    (["train.deterministic=maybe"], r"train\.deterministic: expected bool"),
    (["schedule.kind=step", "schedule.step_size=0"], r"schedule\.step_size: expected a positive int"),
    (["optim.lr"], r"expected key\.path=value"),
])
def test_errors_name_the_key_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("res3d", override)


def test_bad_yaml_file_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such file or recipe"):
        load_config(tmp_path / "missing.yaml")
