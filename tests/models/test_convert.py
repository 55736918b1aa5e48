"""Released weights: Caffe models written here with the authors' layer names and random blobs, and
the PyTorch layouts (torchvision video ResNets, tsn-pytorch / Cadene BN-Inception, the C3D port)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.models.test_fidelity import fill_deterministic
from vidnets.cli import main as cli_main
from vidnets.models import convert, create
from vidnets.models.c3d import C3D
from vidnets.models.caffe import CaffeLayer, read_caffemodel, write_caffemodel
from vidnets.models.convert import (
    WeightsDownloadError,
    WeightsMismatchError,
    caffe_layer_names,
    convert_caffemodel,
    load_caffe_layers,
    load_state_dict_weights,
    res3d_to_torchvision,
    torchvision_to_res3d,
)
from vidnets.models.p3d import P3D
from vidnets.models.res3d import res3d18

PROTOTXTS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "prototxts"
PARAM_TYPES = {
    "Convolution",
    "Convolution3D",
    "CONVOLUTION3D",
    "BN",
    "BatchNorm",
    "Scale",
    "InnerProduct",
    "INNER_PRODUCT",
}


pytestmark = pytest.mark.usefixtures("one_thread")


def prototxt_param_layers(name: str) -> set[str]:
    """Names of the layers with weights in one of the authors' prototxts."""
    text = (PROTOTXTS / name).read_text()
    names = set()
    for chunk in re.split(r"\blayers?\s*\{", text)[1:]:
        layer_name = re.search(r'name:\s*"([^"]+)"', chunk)
        layer_type = re.search(r'\btype:\s*"?(\w+)"?', chunk)
        if layer_name and layer_type and layer_type.group(1) in PARAM_TYPES:
            names.add(layer_name.group(1))
    return names


def meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create(name, **kwargs)


def param_modules(model: nn.Module) -> set[str]:
    return {
        n
        for n, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm3d))
    }


@pytest.mark.skipif(not PROTOTXTS.is_dir(), reason="authors' prototxts not present")
@pytest.mark.parametrize(
    "prototxt, arch, kwargs",
    [
        ("p3d_sports1m.prototxt", "p3d199", {"num_classes": 487}),
        ("p3d_kinetics.prototxt", "p3d199", {}),
        ("p3d_kinetics_flow.prototxt", "p3d199", {"in_channels": 2}),
        ("res3d_sports1m_feat.prototxt", "res3d18", {"res2_projection": True, "num_classes": 487}),
        ("tsn_ucf101_rgb_deploy.prototxt", "tsn_bninception", {}),
        ("tsn_ucf101_flow_deploy.prototxt", "tsn_bninception", {"modality": "flow"}),
        ("c3d_sport1m_frm.prototxt", "c3d", {}),
    ],
)
def test_caffe_names_are_the_authors(prototxt, arch, kwargs):
    """Every weighted layer of the prototxt has a place in the model, and every layer of the model one name."""
    model = meta(arch, **kwargs)
    names = caffe_layer_names(model, arch)
    authors = prototxt_param_layers(prototxt)
    assert authors and authors <= set(names), sorted(authors - set(names))[:5]
    assert {names[n] for n in authors} == param_modules(model)


# -- Caffe round trips --------------------------------------------------------------------------------


def caffe_layers(model: nn.Module, arch: str, bn: str, fc_name: str, c3d: bool = False) -> list[CaffeLayer]:
    """The model's weights as the authors' Caffe layers: ``bn="BN"`` (scale, shift, mean, var) or
    ``"BatchNorm"`` (mean·s, var·s, s, plus a Scale layer with γ, β)."""
    canonical: dict[str, str] = {}
    for caffe_name, path in caffe_layer_names(model, arch).items():
        if (
            caffe_name.startswith("scale")
            or caffe_name in ("fc", "fc_kinetics", "fc_sports1m", "fc8", "fc-action")
            or (c3d and caffe_name in ("fc6", "fc7"))
        ):
            continue
        canonical.setdefault(path, caffe_name)
    canonical["fc8" if c3d else "fc"] = fc_name
    layers = [CaffeLayer("data", "V1:33" if c3d else "Input")]  # 33: C3D's VIDEO_DATA
    for path, caffe_name in canonical.items():
        module = model.get_submodule(path)
        layer_type = "V1:4" if c3d else "Convolution"
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            stats = [module.running_mean, module.running_var]
            if bn == "BN":
                blobs = [t.reshape(1, -1, 1, 1) for t in (module.weight, module.bias, *stats)]
                layers.append(CaffeLayer(caffe_name, "BN", [b.detach().numpy() for b in blobs]))
                continue
            s = 0.25  # a power of two, so mean·s / s is exact
            layers.append(
                CaffeLayer(
                    caffe_name, "BatchNorm", [(stats[0] * s).numpy(), (stats[1] * s).numpy(), np.array([s], np.float32)]
                )
            )
            scale_name = (
                caffe_name.replace("bn_", "scale_", 1) if caffe_name.startswith("bn_") else "scale" + caffe_name[2:]
            )
            layers.append(
                CaffeLayer(scale_name, "Scale", [module.weight.detach().numpy(), module.bias.detach().numpy()])
            )
            continue
        blobs = [module.weight.detach().numpy()] + ([module.bias.detach().numpy()] if module.bias is not None else [])
        layers.append(CaffeLayer(caffe_name, layer_type, blobs))
    return layers


def assert_same_model(got: nn.Module, want: nn.Module, x: torch.Tensor) -> None:
    got_state, want_state = got.state_dict(), want.state_dict()
    for key, value in want_state.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(got_state[key], value), key
    with torch.no_grad():
        assert torch.equal(got.eval()(x), want.eval()(x))


def test_p3d_caffemodel_round_trip(tmp_path):
    """P3D with A, B and C blocks (one per stage) and the Caffe fork's BN layers."""
    want = fill_deterministic(P3D((1, 1, 1, 1), num_classes=5))
    path = tmp_path / "p3d.caffemodel"
    write_caffemodel(path, caffe_layers(want, "p3d63", "BN", "fc_kinetics"))
    got = P3D((1, 1, 1, 1), num_classes=5)
    report = load_caffe_layers(got, "p3d63", read_caffemodel(path), str(path))
    assert report.missing == [] and report.unused == []
    assert "res2a_branch2b_t[0] -> layer1.0.conv_t.weight" in report.loaded
    assert "bn4a_branch2b_t[3] -> layer3.0.bn_t.running_var" in report.loaded
    assert_same_model(got, want, torch.randn(1, 3, 16, 32, 32, generator=torch.Generator().manual_seed(0)))


def test_res3d_caffemodel_round_trip_with_batchnorm_and_scale(tmp_path):
    """C3D v1.1's Res3D: BatchNorm (mean·s, var·s, s) + Scale layers; kwargs read from the file."""
    want = fill_deterministic(res3d18(num_classes=6, width=8, res2_projection=True))
    path = tmp_path / "res3d.caffemodel"
    write_caffemodel(path, caffe_layers(want, "res3d18", "BatchNorm", "fc8"))
    got, report = convert_caffemodel(path, "res3d18")
    assert got.converted_kwargs == {"num_classes": 6, "in_channels": 3, "res2_projection": True, "width": 8}
    assert report.missing == [] and report.unused == []
    assert "scale2a_branch1[1] -> layer1.0.downsample.1.bias" in report.loaded
    assert_same_model(got, want, torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1)))


def test_c3d_v10_legacy_caffemodel_round_trip(tmp_path):
    """C3D v1.0's own legacy format (5-D blobs, fields renumbered) and its fc6-1 … fc8-1 names."""

    def tiny():
        return C3D(num_classes=4, stages=((4,), (4,), (4, 4), (8, 8), (8, 8)), fc_width=16, crop_size=32)

    want = fill_deterministic(tiny())
    path = tmp_path / "c3d.caffemodel"
    layers = caffe_layers(want, "c3d", "BN", "fc8-1", c3d=True)
    assert [l.name for l in layers if l.name.startswith("fc")] == ["fc6-1", "fc7-1", "fc8-1"]
    write_caffemodel(path, layers, layout="c3d")
    read = read_caffemodel(path)
    assert read[1].blobs[0].shape == (4, 3, 3, 3, 3)
    got = tiny()
    report = load_caffe_layers(got, "c3d", read, str(path))
    assert report.missing == [] and report.unused == [] and len(report.loaded) == 22
    assert_same_model(got, want, torch.randn(1, 3, 16, 32, 32, generator=torch.Generator().manual_seed(2)))


def test_tsn_caffemodel_round_trip(tmp_path):
    want = fill_deterministic(create("tsn_bninception", num_classes=5, modality="flow"))
    path = tmp_path / "tsn_flow.caffemodel"
    write_caffemodel(path, caffe_layers(want, "tsn_bninception", "BN", "fc-action"))
    got, report = convert_caffemodel(path, "tsn_bninception")
    assert got.converted_kwargs == {"num_classes": 5, "modality": "flow", "new_length": 5}
    assert report.missing == [] and report.unused == []
    assert "inception_3a/1x1_bn[0] -> backbone.inception_3a.1x1_bn.weight" in report.loaded
    assert_same_model(got, want, torch.randn(1, 3, 10, 64, 64, generator=torch.Generator().manual_seed(3)))


def test_report_names_unused_and_missing_and_shape_mismatch_is_refused(tmp_path):
    model = fill_deterministic(res3d18(num_classes=3, width=4))
    layers = caffe_layers(model, "res3d18", "BatchNorm", "fc8")
    layers = [l for l in layers if l.name != "res5b_branch2b"] + [
        CaffeLayer("fc_extra", "InnerProduct", [np.zeros((2, 2), np.float32)])
    ]
    path = tmp_path / "partial.caffemodel"
    write_caffemodel(path, layers)
    _, report = convert_caffemodel(path, "res3d18")
    assert report.unused == ["fc_extra[0] (2, 2)"]
    assert report.missing == ["layer4.1.conv2.weight"]
    with pytest.raises(
        WeightsMismatchError,
        match=r"layer conv1 blob 0 has shape \(4, 3, 3, 7, 7\) but the model's "
        r"conv1.weight is \(8, 3, 3, 7, 7\)",
    ):
        convert_caffemodel(path, "res3d18", width=8)


def test_cli_convert_caffe(tmp_path, capsys):
    want = fill_deterministic(res3d18(num_classes=6, width=8))
    model_path, out = tmp_path / "res3d.caffemodel", tmp_path / "res3d.pt"
    write_caffemodel(model_path, caffe_layers(want, "res3d18", "BatchNorm", "fc8"))
    assert cli_main(["convert", "caffe", str(model_path), "--arch", "res3d18", "--output", str(out)]) == 0
    assert "loaded 102, unused 0, missing 0" in capsys.readouterr().out  # 20 convs, fc (2), 20 BN × 4
    got = create("res3d18", weights=out)
    assert_same_model(got, want, torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(4)))
    assert (
        cli_main(["convert", "caffe", str(model_path), "--arch", "res3d18", "--output", str(out)]) == 2
    )  # no overwrite
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(WeightsMismatchError, match="converted for res3d18"):
        create("res3d34", weights=out)
    # a shape mismatch is one line on stderr and exit status 2
    layers = [
        CaffeLayer(l.name, l.type, [np.zeros((8, 3, 1, 7, 7), np.float32)] if l.name == "conv1" else l.blobs)
        for l in read_caffemodel(model_path)
    ]
    write_caffemodel(model_path, layers)
    assert cli_main(["convert", "caffe", str(model_path), "--arch", "res3d18", "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "conv1 blob 0 has shape (8, 3, 1, 7, 7)" in err and "(8, 3, 3, 7, 7)" in err
    assert (
        cli_main(
            [
                "convert",
                "caffe",
                str(tmp_path / "none.caffemodel"),
                "--arch",
                "res3d18",
                "--out",
                str(out),
                "--overwrite",
            ]
        )
        == 2
    )
    assert cli_main(["convert", "caffe", str(model_path), "--arch", "t3d121", "--out", str(out), "--overwrite"]) == 2
    assert "no Caffe weights were released" in capsys.readouterr().err


# -- PyTorch layouts ----------------------------------------------------------------------------------


def test_torchvision_key_map():
    assert torchvision_to_res3d(
        {
            "stem.0.weight": 1,
            "stem.1.running_mean": 2,
            "layer2.0.conv1.0.weight": 3,
            "layer2.0.conv1.1.bias": 4,
            "layer4.1.conv2.0.weight": 5,
            "layer3.0.conv2.1.weight": 6,
            "layer2.0.downsample.0.weight": 7,
            "fc.bias": 8,
        }
    ) == {
        "conv1.weight": 1,
        "bn1.running_mean": 2,
        "layer2.0.conv1.weight": 3,
        "layer2.0.bn1.bias": 4,
        "layer4.1.conv2.weight": 5,
        "layer3.0.bn2.weight": 6,
        "layer2.0.downsample.0.weight": 7,
        "fc.bias": 8,
    }
    state = res3d18(width=4).state_dict()
    assert torchvision_to_res3d(res3d_to_torchvision(state)).keys() == state.keys()


@pytest.mark.parametrize("conv_types", ["3d", ("3d", "3d", "2d", "2d", "2d")], ids=["r3d_18", "mc3_18"])
def test_torchvision_state_dicts_load_into_res3d18(tmp_path, conv_types):
    want = fill_deterministic(res3d18(num_classes=7, width=8, conv_types=conv_types))
    path = tmp_path / "tv.pth"
    torch.save(res3d_to_torchvision(want.state_dict()), path)
    got = create("res3d18", weights=path)
    assert got.weights_report.unused == [] and got.weights_report.missing == []
    assert_same_model(got, want, torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(5)))


def test_bninception_layouts_load_into_tsn(tmp_path):
    want = fill_deterministic(create("tsn_bninception", num_classes=4))
    backbone = {k.removeprefix("backbone."): v for k, v in want.state_dict().items() if k.startswith("backbone.")}
    flat = {
        k.replace("inception_3a.", "inception_3a_").replace("inception_5b.", "inception_5b_"): v
        for k, v in backbone.items()
    }
    flat = {re.sub(r"^(inception_\d[ab])\.", r"\1_", k): v for k, v in flat.items()}
    cadene = {**flat, "last_linear.weight": torch.zeros(1000, 1024), "last_linear.bias": torch.zeros(1000)}
    torch.save(cadene, tmp_path / "bninception.pth")
    got = create("tsn_bninception", weights=tmp_path / "bninception.pth", num_classes=4)
    assert sorted(got.weights_report.missing) == ["fc.bias", "fc.weight"]
    assert got.weights_report.unused == ["last_linear.weight (1000, 1024)", "last_linear.bias (1000,)"]
    for key, value in want.backbone.state_dict().items():
        assert torch.equal(got.backbone.state_dict()[key], value), key
    tsn_pytorch = {"module.base_model." + k: v for k, v in flat.items()}
    tsn_pytorch |= {"module.new_fc.weight": want.fc.weight.detach(), "module.new_fc.bias": want.fc.bias.detach()}
    torch.save({"epoch": 80, "state_dict": tsn_pytorch}, tmp_path / "tsn.pth.tar")
    got = create("tsn_bninception", weights=tmp_path / "tsn.pth.tar")
    assert got.weights_report.missing == [] and got.weights_report.unused == []
    assert_same_model(got, want, torch.randn(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(6)))
    flow = create("tsn_bninception", weights=tmp_path / "tsn.pth.tar", modality="flow")  # cross-modality conv1
    rgb_kernel = want.backbone.conv1_7x7_s2.weight
    assert torch.allclose(flow.backbone.conv1_7x7_s2.weight, rgb_kernel.mean(1, keepdim=True).expand(-1, 10, -1, -1))


def test_c3d_port_pickle_layout():
    def tiny():
        return C3D(num_classes=4, stages=((4,), (4,), (4, 4), (8, 8), (8, 8)), fc_width=16, crop_size=32)

    want = fill_deterministic(tiny())
    port = {
        ("conv1" if k.startswith("conv1a") else "conv2" if k.startswith("conv2a") else k.split(".")[0])
        + "."
        + k.split(".")[1]: v
        for k, v in want.state_dict().items()
    }
    assert "conv1.weight" in port and "conv3a.weight" in port and "fc8.bias" in port
    got = tiny()
    report = load_state_dict_weights(got, "c3d", port, "c3d.pickle")
    assert report.missing == [] and report.unused == [] and len(report.loaded) == 22
    assert_same_model(got, want, torch.randn(1, 3, 16, 32, 32, generator=torch.Generator().manual_seed(7)))
    port["fc7.weight"] = torch.zeros(16, 17)
    with pytest.raises(WeightsMismatchError, match=r"fc7.weight has shape \(16, 17\)"):
        load_state_dict_weights(tiny(), "c3d", port, "c3d.pickle")


# -- downloads (never over the network) -----------------------------------------------------------------


def test_kinetics400_download_without_network_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    unreachable = convert.Download("http://127.0.0.1:9/r3d_18-b3b3357e.pth", "b3b3357e", 400)
    monkeypatch.setitem(convert.DOWNLOADS, ("res3d18", "kinetics400"), unreachable)
    with pytest.raises(WeightsDownloadError, match="cannot download http://127.0.0.1:9/r3d_18-b3b3357e.pth") as info:
        create("res3d18", weights="kinetics400")
    assert "\n" not in str(info.value) and "weights=PATH" in str(info.value)
    with pytest.raises(WeightsMismatchError, match="no downloadable checkpoint of that name for p3d199"):
        create("p3d199", weights="kinetics400")


def test_cached_download_is_sha256_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    want = fill_deterministic(res3d18(num_classes=400, width=4))
    cached = tmp_path / "checkpoints" / "r3d_18-b3b3357e.pth"
    cached.parent.mkdir()
    torch.save(res3d_to_torchvision(want.state_dict()), cached)
    with pytest.raises(WeightsDownloadError, match="SHA-256 .* does not start with the published b3b3357e"):
        create("res3d18", weights="kinetics400")
    prefix = convert.sha256_of(cached)[:8]
    monkeypatch.setitem(
        convert.DOWNLOADS,
        ("res3d18", "kinetics400"),
        convert.Download("http://127.0.0.1:9/r3d_18-b3b3357e.pth", prefix, 400),
    )
    got = create("res3d18", weights="kinetics400")
    assert got.fc.out_features == 400 and torch.equal(got.conv1.weight, want.conv1.weight)
