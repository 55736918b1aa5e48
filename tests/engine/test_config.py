"""YAML recipes → typed configs; clear errors for unknown or ill-typed keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidnets.engine.config import CONFIG_DIR, Config, ConfigError, load_config

RECIPES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
LAYOUTS = ["ucf101", "hmdb51", "kinetics", "folder"]


def test_there_is_a_recipe_per_paper():
    assert set(RECIPES) >= {
        "c3d",
        "two_stream_spatial",
        "two_stream_temporal",
        "tsn_rgb",
        "tsn_flow",
        "p3d",
        "t3d",
        "res3d",
    }


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
    cfg = load_config(
        "res3d", ["optim.lr=0.02", "schedule.milestones=[3, 5]", "model.kwargs={width: 16}", "model.pretrained=null"]
    )
    assert cfg.optim.lr == 0.02 and cfg.schedule.milestones == [3, 5] and cfg.model.kwargs == {"width": 16}


@pytest.mark.parametrize(
    "override, message",
    [
        (["optim.lrr=0.1"], r"unknown key optim\.lrr; allowed keys in optim: lr, momentum"),
        (["bogus.x=1"], r"unknown key bogus"),
        (["optim.lr=fast"], r"optim\.lr: expected float, found 'fast'"),
        (["data.batch_size=2.5"], r"data\.batch_size: expected int, found 2\.5"),
        (["train.precision=fp8"], r"train\.precision: expected one of auto, fp32, bf16, fp16; found 'fp8'"),
        (["data.layout=youtube"], r"data\.layout: expected one of ucf101, hmdb51"),
        (["train.deterministic=maybe"], r"train\.deterministic: expected bool"),
        (["schedule.kind=step", "schedule.step_size=0"], r"schedule\.step_size: expected a positive int"),
        (["optim.lr"], r"expected key\.path=value"),
    ],
)
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


def test_multitask_recipe_and_task_config():
    from vidnets.engine.config import eval_task, task_config, task_names

    cfg = load_config("two_stream_multitask", ["multitask.tasks.hmdb51.root=/data/hmdb51", "data.root=/data/UCF-101"])
    assert task_names(cfg) == ["ucf101", "hmdb51"] and eval_task(cfg) == "hmdb51"
    hmdb = task_config(cfg, "hmdb51")
    assert (hmdb.data.layout, hmdb.data.root, hmdb.data.recipe) == ("hmdb51", "/data/hmdb51", "two_stream_temporal")
    assert task_config(cfg, "ucf101").data.root == "/data/UCF-101"
    assert eval_task(load_config("res3d")) is None


@pytest.mark.parametrize(
    "override, message",
    [
        (["multitask.tasks={a: {}}"], r"multitask\.tasks: expected at least two tasks"),
        (["multitask.tasks={a: {}, b: {rooot: x}}"], r"unknown key multitask\.tasks\.b\.rooot; allowed keys"),
        (["multitask.tasks={a: {}, b: {layout: youtube}}"], r"multitask\.tasks\.b\.layout: expected one of ucf101"),
        (["multitask.tasks={a: {}, b: {split: two}}"], r"multitask\.tasks\.b\.split: expected int"),
        (["multitask.tasks={a: {}, b: {}}", "multitask.mixing=[1]"], r"multitask\.mixing: expected 2 non-negative"),
        (["multitask.tasks={a: {}, b: {}}", "multitask.mixing=sometimes"], r"multitask\.mixing: expected proportional"),
        (["multitask.tasks={a: {}, b: {}}", "multitask.eval_task=c"], r"multitask\.eval_task: expected one of a, b"),
        (["multitask.eval_task=a"], r"multitask\.eval_task: 'a' given, but multitask\.tasks is empty"),
    ],
)
def test_multitask_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("two_stream_spatial", override)


@pytest.mark.parametrize(
    "override, message",
    [
        (["model.kwargs={widht: 8}"], r"model\.kwargs\.widht: res3d18 takes no such argument; allowed: .*width"),
        (
            ["data.train_kwargs={frame: 8}"],
            r"data\.train_kwargs\.frame: the res3d dataset takes no such setting; "
            r"allowed: .*frames",
        ),
        (["data.test_kwargs={crops: 4}"], r"data\.test_kwargs\.crops: expected one of 1, 3, 5, 10, found 4"),
        (
            ["data.recipe=tsn_flow", "data.test_kwargs={jitter: true}"],
            r"data\.test_kwargs\.jitter: the tsn_flow "
            r"dataset takes no such setting",
        ),
    ],
)
def test_kwargs_are_checked_against_the_builders(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("res3d", override)
