"""The inference/training fast path: layout, BN folding, autocast, parity (tiny models, CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidnets.engine.fastpath import (
    PARITY_TOLERANCE,
    InferenceModel,
    find_conv_bn_pairs,
    fold_batchnorm,
    grad_scaler,
    model_to_channels_last,
    parity_check,
    prepare_for_inference,
    prepare_model,
    resolve_precision,
    to_channels_last,
    training_context,
)


def _randomize_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics, so that folding is not an identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(c)
        self.conv2 = nn.Conv3d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class TinyNet(nn.Module):
    """Stem in a Sequential, a residual block with attribute-style conv/bn, a linear head."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1, bias=False), nn.BatchNorm3d(8), nn.ReLU())
        self.block = Block(8)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(self.block(self.stem(x)).mean((2, 3, 4)))


class SharedConvOutput(nn.Module):
    """conv's output feeds both a BN and a skip: folding it would change the skip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class Untraceable(nn.Module):
    """Data-dependent control flow defeats torch.fx at the top; its children still trace."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU())
        self.block = Block(4)
        self.conv = nn.Conv3d(4, 4, 1)  # called from the untraceable forward: never folded
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x):
        if x.sum() > 0:
            x = -x
        return self.bn(self.conv(self.block(self.body(x)))).flatten(1)


def _x(batch: int = 2, t: int = 4, s: int = 12) -> torch.Tensor:
    return torch.randn(batch, 3, t, s, s, generator=torch.Generator().manual_seed(1))


def _tiny() -> TinyNet:
    torch.manual_seed(0)
    return _randomize_bn(TinyNet()).eval()


# -- layout -------------------------------------------------------------------------------------
def test_to_channels_last_sets_strides_and_keeps_shape():
    x5 = torch.randn(2, 3, 4, 5, 6)
    y5 = to_channels_last(x5)
    assert y5.shape == x5.shape and y5.is_contiguous(memory_format=torch.channels_last_3d)
    y4 = to_channels_last(torch.randn(2, 3, 5, 6))
    assert y4.is_contiguous(memory_format=torch.channels_last)
    x3 = torch.randn(2, 3, 4)
    assert to_channels_last(x3) is x3
    torch.testing.assert_close(y5, x5)


def test_model_to_channels_last_handles_mixed_2d_and_3d():
    m = nn.Sequential(nn.Conv3d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Linear(4, 2))
    model_to_channels_last(m)
    assert m[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert m[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert m[2].weight.is_contiguous()


# -- BN folding -----------------------------------------------------------------------------------
def test_find_pairs_in_sequential_and_attribute_style_blocks():
    assert find_conv_bn_pairs(_tiny()) == [
        ("stem.0", "stem.1"),
        ("block.conv1", "block.bn1"),
        ("block.conv2", "block.bn2"),
    ]


def test_conv_with_a_second_consumer_is_not_folded():
    assert find_conv_bn_pairs(SharedConvOutput()) == []


def test_untraceable_forward_falls_back_to_its_children():
    assert find_conv_bn_pairs(Untraceable()) == [
        ("body.0", "body.1"),
        ("block.conv1", "block.bn1"),
        ("block.conv2", "block.bn2"),
    ]
    model, x = _randomize_bn(Untraceable()).eval(), _x()
    fast = prepare_for_inference(model, precision="fp32")
    assert parity_check(model, fast, x).ok


def test_fold_preserves_fp32_outputs():
    model, x = _tiny(), _x()
    ref = model(x)
    pairs = fold_batchnorm(model)
    assert len(pairs) == 3
    assert not any(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-5)


def test_fold_refuses_training_mode():
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(TinyNet().train())


# -- precision ------------------------------------------------------------------------------------
def test_resolve_precision_names():
    cpu = torch.device("cpu")
    assert resolve_precision(cpu, "fp32") is None
    assert resolve_precision(cpu, "bf16") is torch.bfloat16
    assert resolve_precision(cpu, "auto") in (None, torch.bfloat16)
    with pytest.raises(ValueError, match="fp16"):
        resolve_precision(cpu, "fp16")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision(cpu, "int8")


def test_training_context_autocasts_convs_to_bf16_and_fp32_is_a_no_op():
    conv, x = nn.Conv3d(3, 4, 1), _x()
    with training_context("cpu", "bf16"):
        assert conv(x).dtype is torch.bfloat16
    with training_context("cpu", "fp32"):
        assert conv(x).dtype is torch.float32
    with training_context("cpu", None):
        assert conv(x).dtype is torch.float32


def test_grad_scaler_only_for_fp16():
    assert not grad_scaler("cpu", torch.bfloat16).is_enabled()
    assert not grad_scaler("cpu", None).is_enabled()


def test_training_fast_path_step_learns():
    """A bf16 + channels-last training step runs, keeps fp32 weights and reduces the loss."""
    torch.manual_seed(0)
    model = prepare_model(TinyNet(classes=3), "cpu")
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = to_channels_last(_x(batch=6)), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = []
    for _ in range(8):
        opt.zero_grad()
        with training_context("cpu", "bf16"):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model.fc.weight.dtype is torch.float32
    assert losses[-1] < losses[0]


# -- inference wrapper and parity -------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_prepare_for_inference_parity(precision, channels_last):
    model, x = _tiny(), _x()
    fast = prepare_for_inference(model, precision=precision, channels_last=channels_last)
    assert isinstance(fast, InferenceModel) and len(fast.folded) == 3 and not fast.training
    out = fast(x)
    assert out.dtype is torch.float32 and out.shape == (2, 10)
    report = parity_check(model, fast, x)
    assert report.ok, report
    assert report.precision == precision
    assert report.top1_agreement == 1.0
    assert report.rel_error <= PARITY_TOLERANCE[fast.dtype]


def test_prepare_for_inference_leaves_the_original_trainable():
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_for_inference(model, precision="bf16")
    assert any(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_inference_model_refuses_training():
    fast = prepare_for_inference(_tiny(), precision="fp32")
    with pytest.raises(RuntimeError, match="inference only"):
        fast.train()
    fast.eval()  # still allowed


def test_parity_check_catches_a_wrong_fast_path():
    model, x = _tiny(), _x(batch=8)
    fast = prepare_for_inference(model, precision="fp32")
    with torch.no_grad():
        fast.module.stem[0].weight.mul_(-1.0)  # a broken fold / layout bug
    report = parity_check(model, fast, x)
    assert not report.ok
    assert report.rel_error > 10 * report.tolerance


def test_registered_res3d18_folds_all_pairs_and_matches():
    """res3d18: conv1/bn1 + 8 blocks × 2 + 3 projections = 20 Conv+BN pairs; bf16 within tolerance."""
    from vidnets.models import create, list_models

    pytest.importorskip("vidnets.models.res3d")
    if "res3d18" not in list_models():
        pytest.skip("res3d18 not registered")
    torch.manual_seed(0)
    model = _randomize_bn(create("res3d18", num_classes=5, width=8)).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    fast = prepare_for_inference(model, precision="bf16")
    assert len(fast.folded) == 20
    report = parity_check(model, fast, x)
    assert report.ok, report


@pytest.mark.slow
def test_compiled_inference_matches_and_reports_compile_time():
    model, x = _tiny(), _x()
    fast = prepare_for_inference(model, precision="fp32", compile=True, example_input=x)
    assert fast.compile_seconds is not None and fast.compile_seconds > 0
    report = parity_check(model, fast, x)
    assert report.ok, report


# -- oneDNN 3D convolutions at batch 1 ------------------------------------------------------------
def test_batch1_conv3d_is_one_pytorch_would_not_send_to_onednn():
    """The reason OneDNNConv3d exists: PyTorch's dispatcher picks its slow 3D kernel here."""
    x, w = torch.randn(1, 128, 4, 28, 28), torch.randn(128, 128, 3, 3, 3)
    backend = torch._C._select_conv_backend(x, w, None, [1] * 3, [1] * 3, [1] * 3, False, [0] * 3, 1, None)
    if "Mkldnn" in str(backend):
        pytest.skip(f"this torch build already sends batch-1 3D convs to oneDNN ({backend})")
    assert "Slow3d" in str(backend)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("channels_last", [True, False])
def test_onednn_conv3d_matches_conv3d_values_and_grads(batch, channels_last):
    from vidnets.engine.fastpath import OneDNNConv3d, use_onednn_conv3d

    torch.manual_seed(0)
    ref = nn.Conv3d(16, 24, (3, 3, 3), stride=(1, 2, 2), padding=1, dilation=1)
    fast = use_onednn_conv3d(nn.Sequential(nn.Conv3d(16, 24, (3, 3, 3), stride=(1, 2, 2), padding=1)))[0]
    fast.load_state_dict(ref.state_dict())
    assert type(fast) is OneDNNConv3d and list(fast.state_dict()) == ["weight", "bias"]
    x = torch.randn(batch, 16, 4, 14, 14)
    if channels_last:
        x, _ = to_channels_last(x), model_to_channels_last(fast)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ref(x1), fast(x2)
    torch.testing.assert_close(y2, y1, rtol=1e-5, atol=1e-5)
    y1.square().sum().backward()
    y2.square().sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-3)


def test_onednn_conv3d_under_bf16_autocast_and_fallbacks():
    from vidnets.engine.fastpath import use_onednn_conv3d

    torch.manual_seed(0)
    x = torch.randn(1, 8, 4, 10, 10)
    ref = nn.Conv3d(8, 8, 3, padding=1)
    fast = use_onednn_conv3d(nn.Sequential(nn.Conv3d(8, 8, 3, padding=1)))[0]
    fast.load_state_dict(ref.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y1, y2 = ref(x), fast(x)
    assert y2.dtype == y1.dtype == torch.bfloat16
    torch.testing.assert_close(y2.float(), y1.float(), rtol=2e-2, atol=2e-2)
    # what oneDNN's direct entry does not cover goes through nn.Conv3d's own path
    for kwargs in ({"padding": "same"}, {"padding": 1, "padding_mode": "replicate"}):
        ref = nn.Conv3d(8, 8, 3, **kwargs).double()
        fast = use_onednn_conv3d(nn.Sequential(nn.Conv3d(8, 8, 3, **kwargs)))[0]
        fast.load_state_dict(ref.state_dict())
        fast.double()
        torch.testing.assert_close(fast(x.double()), ref(x.double()))
    with torch.no_grad():
        assert fast(x[0].double()).shape == (8, 4, 10, 10)  # unbatched input


def test_onednn_routing_skips_compile_and_keeps_folding():
    from vidnets.engine.fastpath import OneDNNConv3d
    from vidnets.models import create

    model = _randomize_bn(create("res3d10", num_classes=5, width=4)).eval()
    fast = prepare_for_inference(model, precision="fp32")
    assert len(fast.folded) > 0
    assert all(type(m) is not nn.Conv3d for m in fast.module.modules())
    assert any(isinstance(m, OneDNNConv3d) for m in fast.module.modules())
    assert not any(isinstance(m, OneDNNConv3d) for m in model.modules())  # the original is untouched
    assert parity_check(model, fast, torch.randn(1, 3, 4, 32, 32)).ok


def test_a_model_already_on_the_onednn_path_still_folds():
    """prepare_for_inference on a model the trainer prepared (OneDNNConv3d inside) folds the same pairs."""
    from vidnets.models import create

    model = _randomize_bn(create("res3d10", num_classes=5, width=4)).eval()
    expected = find_conv_bn_pairs(model)
    prepare_model(model, "cpu")
    assert find_conv_bn_pairs(model) == expected and expected
    fast = prepare_for_inference(model, precision="fp32")
    assert len(fast.folded) == len(expected)
    assert parity_check(model, fast, torch.randn(2, 3, 4, 32, 32)).ok


# -- packed convolutions, fused ReLUs, max-pools under autocast --------------------------------------
class ConvReluTwice(nn.Module):
    """conv_a feeds only its ReLU (fusable); conv_b's output also reaches the sum (not fusable)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a, self.relu_a = nn.Conv3d(3, 4, 3, padding=1), nn.ReLU()
        self.conv_b, self.relu_b = nn.Conv3d(4, 4, 3, padding=1), nn.ReLU()

    def forward(self, x):
        y = self.conv_b(self.relu_a(self.conv_a(x)))
        return (self.relu_b(y) + y).mean((2, 3, 4))


def _tiny_c3d():
    from vidnets.models import create

    torch.manual_seed(0)
    return create("c3d", num_classes=5, width=4, fc_width=16, crop_size=32, init="msra").eval()


def test_conv_relu_pairs_only_where_the_relu_is_the_sole_consumer():
    from vidnets.engine.fastpath import find_conv_relu_pairs

    assert find_conv_relu_pairs(ConvReluTwice()) == [("conv_a", "relu_a")]
    # after Conv+BN folding the BatchNorm is an Identity between the conv and its ReLU
    model = _tiny()
    fold_batchnorm(model)
    assert find_conv_relu_pairs(model) == [("stem.0", "stem.2")]  # the block's ReLUs are functional


def test_c3d_pairs_are_found_and_its_batchnorm_variant_folds_then_fuses():
    from vidnets.engine.fastpath import find_conv_relu_pairs
    from vidnets.models import create

    pairs = find_conv_relu_pairs(_tiny_c3d())
    assert len(pairs) == 8 and pairs[0] == ("conv1a", "relu1a")
    torch.manual_seed(0)
    model = _randomize_bn(create("c3d", num_classes=5, width=4, fc_width=16, crop_size=32, batch_norm=True)).eval()
    fast = prepare_for_inference(model, precision="fp32")
    assert len(fast.folded) == 8 and len(fast.fused) == 8
    assert parity_check(model, fast, torch.randn(2, 3, 16, 32, 32)).ok


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fused_and_packed_c3d_matches_and_features_path_keeps_relus(precision):
    from vidnets.engine.fastpath import PackedConv3d

    model, x = _tiny_c3d(), torch.randn(3, 3, 16, 32, 32)
    fast = prepare_for_inference(model, precision=precision)
    assert len(fast.fused) == 8
    assert all(type(m) is PackedConv3d for m in fast.module.modules() if isinstance(m, nn.Conv3d))
    assert not any(isinstance(m, nn.ReLU) for name, m in fast.module.named_modules() if name.startswith("relu1"))
    report = parity_check(model, fast, x)
    assert report.ok, report
    assert parity_check(model, fast, x[:1]).ok  # a second input shape packs its own weights
    plain = prepare_for_inference(model, precision=precision, fuse=False)
    assert plain.fused == [] and isinstance(plain.module.relu1a, nn.ReLU)


def test_packed_conv3d_matches_conv3d_and_follows_weight_changes():
    import copy

    from vidnets.engine.fastpath import pack_conv3d

    torch.manual_seed(0)
    ref = nn.Conv3d(6, 8, 3, stride=(1, 2, 2), padding=1).eval().requires_grad_(False)
    packed = pack_conv3d(nn.Sequential(copy.deepcopy(ref)))[0]
    x = to_channels_last(torch.randn(2, 6, 4, 10, 10))
    with torch.no_grad():
        torch.testing.assert_close(packed(x), ref(x), rtol=1e-5, atol=1e-5)
        packed.activation = "relu"
        torch.testing.assert_close(packed(x), torch.relu(ref(x)), rtol=1e-5, atol=1e-5)
        packed.weight.mul_(-1.0)  # an in-place edit is seen, not hidden by the packed copy
        ref.weight.mul_(-1.0)
        torch.testing.assert_close(packed(x), torch.relu(ref(x)), rtol=1e-5, atol=1e-5)
        twin = copy.deepcopy(packed)  # the packed copies are dropped and rebuilt
        torch.testing.assert_close(twin(x), packed(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = packed(x)
        assert y.dtype == torch.bfloat16
        torch.testing.assert_close(y.float(), torch.relu(ref(x)), rtol=3e-2, atol=3e-2)


def test_max_pool_keeps_bf16_under_autocast_with_the_same_values():
    from vidnets.engine.fastpath import max_pool_in_input_dtype

    pool = max_pool_in_input_dtype(nn.Sequential(nn.MaxPool3d((1, 2, 2)), nn.AdaptiveMaxPool3d(1)))
    x = torch.randn(2, 4, 2, 6, 6).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pool(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), nn.AdaptiveMaxPool3d(1)(nn.MaxPool3d((1, 2, 2))(x.float())))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_conv3d_pads_odd_input_channels_without_changing_outputs(dtype):
    import copy

    from vidnets.engine.fastpath import _pad_channels, pack_conv3d

    torch.manual_seed(0)
    ref = nn.Conv3d(3, 8, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3)).eval().requires_grad_(False)
    x = to_channels_last(torch.randn(2, 3, 4, 20, 20)).to(dtype)
    skip = to_channels_last(torch.randn(2, 8, 4, 10, 10)).to(dtype)
    expected = torch.relu(ref.to(dtype)(x).float() + skip.float())
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 2e-2}
    outputs = {}
    with torch.no_grad():
        for setting in (True, False, None):
            packed = pack_conv3d(nn.Sequential(copy.deepcopy(ref)))[0]
            packed.activation, packed.pad_odd_channels = "relu", setting
            outputs[setting] = packed(x, skip)
            weight, padded = next(iter(packed._packed_weights.values()))
            decided = packed.__dict__.get("_padding_decisions", {}).get((tuple(x.shape), dtype), False)
            assert padded == (setting if setting is not None else decided)
            torch.testing.assert_close(outputs[setting].float(), expected, **tolerance)
        assert outputs[None].shape == (2, 8, 4, 10, 10)
        assert packed._padding_decisions.keys() == {(tuple(x.shape), dtype)}  # measured once, for this shape
        for layout in (torch.contiguous_format, torch.channels_last_3d):
            wider = _pad_channels(x.contiguous(memory_format=layout))
            assert wider.is_contiguous(memory_format=layout) and torch.equal(wider[:, :3], x)
            assert not wider[:, 3].any()
        even = pack_conv3d(nn.Sequential(nn.Conv3d(4, 8, 3).eval().requires_grad_(False)))[0]
        even(to_channels_last(torch.randn(1, 4, 3, 5, 5)))
        assert "_padding_decisions" not in even.__dict__  # nothing to pad, nothing timed


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "kernel,shape", [((1, 2, 2), (2, 5, 3, 9, 8)), ((2, 2, 2), (1, 7, 5, 6, 7)), ((2, 3, 1), (2, 3, 4, 6, 2))]
)
def test_int16_max_pool_of_nonnegative_maps_equals_aten(dtype, kernel, shape):
    # called directly: the pools of the fast path use it from 2**20 elements on
    from vidnets.engine.fastpath import _max_pool_as_int16

    x = torch.relu(torch.randn(shape)).to(dtype)
    x[0, 0, 0, 0, 0] = -0.0
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        x = x.contiguous(memory_format=layout)
        y = _max_pool_as_int16(x, kernel)
        assert torch.equal(y, nn.functional.max_pool3d(x.float(), kernel).to(dtype))
        assert y.is_contiguous(memory_format=layout)


def test_only_pools_that_read_a_relu_take_the_int16_path(monkeypatch):
    from vidnets.engine import fastpath

    monkeypatch.setattr(fastpath, "_INT16_POOL_MIN_ELEMENTS", 0)  # tiny maps take it too

    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_a, self.relu, self.pool_a = nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2)
            self.conv_b, self.pool_b = nn.Conv3d(4, 4, 3, padding=1), nn.MaxPool3d(2)

        def forward(self, x):
            return self.pool_b(self.conv_b(self.pool_a(self.relu(self.conv_a(x))))).flatten(1)

    torch.manual_seed(0)
    model = Mixed().eval()
    fast = prepare_for_inference(model, precision="bf16")
    assert (fast.module.pool_a.nonnegative_input, fast.module.pool_b.nonnegative_input) == (True, False)
    assert parity_check(model, fast, torch.randn(2, 3, 4, 8, 8)).ok  # pool_b sees negative values
    c3d = prepare_for_inference(_tiny_c3d(), precision="bf16")
    assert all(m.nonnegative_input for n, m in c3d.module.named_modules() if n.startswith("pool"))


def test_a_model_prepared_inside_inference_mode_runs():
    from vidnets.models import create

    torch.manual_seed(0)
    model = create("res3d10", num_classes=5, width=4).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.inference_mode():  # its weights become inference tensors, which have no version counter
        fast = prepare_for_inference(model, precision="fp32")
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)


def test_residual_blocks_fuse_relu_and_the_sum_into_their_convolutions():
    from vidnets.engine.fastpath import fuse_conv_relu
    from vidnets.models import create

    torch.manual_seed(0)
    model = _randomize_bn(create("res3d10", num_classes=5, width=4)).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    for precision in ("fp32", "bf16"):
        fast = prepare_for_inference(model, precision=precision)
        kinds = [what for _, what in fast.fused]
        assert kinds.count("add+relu") == 4 and kinds.count("relu") == 4 + 1  # 4 blocks, and the stem
        report = parity_check(model, fast, x)
        assert report.ok, report
    # a conv whose output also goes elsewhere keeps its own ReLU, inside a traced child too
    wrapped = nn.Sequential(ConvReluTwice()).eval()
    reference = wrapped(_x())
    assert fuse_conv_relu(wrapped) == [("0.conv_a", "0.relu_a")]
    torch.testing.assert_close(wrapped(_x()), reference)
