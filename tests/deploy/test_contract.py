"""model.json: what each kind of recipe writes into the contract, and what reading one refuses."""

from __future__ import annotations

import json

import pytest
import torch

from vidnets.deploy.contract import build_contract, contract_config, read_contract
from vidnets.deploy.runtime import Deployment, VideoScorer
from vidnets.engine.config import load_config
from vidnets.models import create


def _contract(recipe: str, model_name: str, sets: tuple = (), **kwargs) -> dict:
    cfg = load_config(recipe, list(sets))
    with torch.device("meta"):
        model = create(model_name, num_classes=4, **kwargs)
    state = {"model_name": model_name, "model_kwargs": kwargs, "metrics": {"video_top1": 0.5, "videos": 8}}
    return build_contract(state, cfg, ["a", "b", "c", "d"], model)


def test_clip_recipe_contract():
    contract = _contract("res3d", "res3d18", ["data.test_kwargs={frames: 16, views: 5}"])
    assert contract["input"] == {
        "name": "clips",
        "layout": "NCTHW",
        "shape": [None, 3, 16, 112, 112],
        "dtype": "float32",
        "dynamic_axes": ["N"],
    }
    prep = contract["preprocessing"]
    assert (prep["frames"], prep["stride"], prep["size"], prep["crop"]) == (16, 2, (128, 171), 112)
    assert prep["mean"] == [128.0] * 3 and prep["std"] == [1.0] * 3
    assert contract["test_protocol"]["views"] == 5 and contract["test_protocol"]["crops"] == 1
    assert contract["output"]["shape"] == [None, 4] and contract["metrics"]["video_top1"] == 0.5
    assert contract["modality"] == "rgb" and contract_config(contract).data.test_kwargs["frames"] == 16


def test_tsn_contract_keeps_the_test_segments():
    contract = _contract("tsn_rgb", "tsn_bninception")
    assert contract["input"]["layout"] == "NKCHW" and contract["input"]["shape"] == [None, 25, 3, 224, 224]
    assert contract["preprocessing"]["mean"] == [123.0, 117.0, 104.0]
    assert contract["test_protocol"]["crops"] == 10


def test_flow_contract_and_serving_it_is_refused():
    contract = _contract("two_stream_temporal", "two_stream_temporal", ["data.flow_root=/data/flow"])
    assert contract["modality"] == "flow" and contract["input"]["shape"] == [None, 20, 224, 224]
    assert contract["preprocessing"]["flow_root"] == "/data/flow"
    with pytest.raises(ValueError, match="flow model reads optical flow"):
        VideoScorer(Deployment(contract, runner=lambda x: x, source="onnx", path="exports/flow"))


def test_read_contract_refuses_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected an export folder"):
        read_contract(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_contract(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "something-else/1"}))
    with pytest.raises(ValueError, match="vidnets-export/1"):
        read_contract(tmp_path)
