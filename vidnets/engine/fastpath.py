"""The fast path: bf16 autocast, channels-last 3D layout, Conv+BN folding, optional torch.compile.

3D ConvNets spend nearly all their time in convolutions, and oneDNN runs those much faster in
bf16 and with channels-last (NDHWC) tensors than in fp32 NCDHW, the layout PyTorch and most
toolkits default to (``python -m benchmarks.models`` and ``python -m benchmarks.vs_torchvision``
measure the gain on the machine at hand; ``BENCHMARKS.md`` has the numbers). Everything here is
on by default where it is safe, and each piece can be switched off.

Inference::

    fast = prepare_for_inference(model)            # precision="auto", channels_last, fold_bn
    logits = fast(clips)                           # fp32 logits; autocast + layout inside
    report = parity_check(model, fast, clips)      # fp32 reference vs fast path
    assert report.ok, report

    fast = prepare_for_inference(model, compile=True, example_input=clips)
    fast.compile_seconds                           # cold compile time (freezing on)

Training (the trainer uses these)::

    model = prepare_model(model, device)           # to(device), channels-last, oneDNN convs
    dtype = resolve_precision(device, "auto")      # bf16 where it pays off (CUDA; CPUs: measured), else None
    scaler = grad_scaler(device, dtype)            # enabled only for fp16
    for x, y in loader:
        x = to_channels_last(x.to(device, non_blocking=True))
        with training_context(device, dtype):
            loss = criterion(model(x), y)
        scaler.scale(loss).backward(); scaler.step(opt); scaler.update()

``precision`` is ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA only). ``"auto"`` is bf16
on CUDA with bf16 support, fp16 on older CUDA, and on a CPU bf16 only where it was *measured*
faster than fp32: the first use times one Conv3d both ways (0.2–0.5 s; skipped on CPUs without
AVX-512 BF16 or AMX) and caches the answer per CPU, torch version and thread count in
``~/.cache/vidnets/cpu_precision.json``. Vendor flags do not predict it: Intel AVX-512 BF16
without AMX runs bf16 slower than fp32 (0.6–0.8×), AMD Zen 4/5 and AMX 2–3× faster.
``VIDNETS_CPU_BF16=1`` (bf16) or ``=0`` (fp32) forces the choice; see
``vidnets.utils.device.cpu_bf16_calibration`` for the record and the cache location.

Batch-1 3D convolutions: PyTorch's CPU dispatcher sends a Conv3d whose input has batch 1 and
N·C·T·H ≤ 20480 (every res3d18 layer after ``conv2_x`` at 8×112², most of C3D's) to its own
``slow_conv3d`` (im2col + GEMM) instead of oneDNN; oneDNN runs those layers 2.2–4.2× faster
(``python -m benchmarks.conv_dispatch``; 128 ch at 4×28², fp32: 25 ms → 5.9 ms). :func:`use_onednn_conv3d` makes every ``nn.Conv3d`` call
oneDNN directly on the CPU (fp32 and bf16; anything else falls back to ``F.conv3d``); it is part of
:func:`prepare_for_inference` and :func:`prepare_model` and costs nothing at larger batches,
where the dispatcher picks oneDNN anyway.

Conv+BN folding (inference only: it bakes BN's running statistics into the convolution) finds
every convolution whose output goes only into a BatchNorm, by tracing the forward with
``torch.fx`` (a forward that cannot be traced is skipped and its children are traced one by
one, recursively). The pairs are fused with
``torch.nn.utils.fusion.fuse_conv_bn_eval`` in place of the convolution, and the BatchNorm
becomes ``nn.Identity``, so the model keeps its class and methods. :func:`find_conv_bn_pairs`
lists the pairs of any model. Pairs folded in the registered models (at their defaults):

=====================  ===========  ============================================================
model                  pairs (BNs)  where
=====================  ===========  ============================================================
res3d10/16/18/26/34    12–36 (all)  stem, both convs of every block, the projections
res3d18_simplified     20 (all)
p3d63/131/199          65–201       every conv→BN of the bottlenecks; the stem's pair is called
                       (all but 1)  from a forward fx cannot trace and stays unfolded
densenet3d121/169      58/82        each dense layer's 1×1×1 conv→BN; the other BNs come before
                       (of 121/169) their conv (pre-activation BN→ReLU→conv): nothing to fold into
t3d121/169             58/82        as DenseNet3D (the TTL branches' convs feed a concat)
                       (of 130/178)
tsn_bninception        69 (all)     every conv→BN of BN-Inception
c3d, c3d_search_net,   0            no BatchNorm (C3D and CNN-M as published);
two_stream_*                        ``c3d(batch_norm=True)`` folds its 8
=====================  ===========  ============================================================

The ``Conv+BN folded`` column of ``python -m benchmarks.models`` reports these counts.

Packed weights and fused ReLUs (inference on the CPU): ``aten.mkldnn_convolution`` reorders a
convolution's weight into oneDNN's blocked layout on every call, which for the wide late layers of a
3D net (many weights, few output positions) costs about as much as the convolution itself.
:class:`PackedConv3d` keeps the
reordered weight per input shape (up to four shapes) and runs oneDNN's convolution entry with the
ReLU after it as a post-op, and a residual block's sum too (:func:`fuse_conv_relu`, wherever the
convolution's output goes nowhere else: C3D's eight ReLUs, every ReLU and sum of the 3D ResNets'
blocks, most of P3D's, DenseNet3D's and T3D's 1×1×1 bottlenecks; ``InferenceModel.fused`` lists
them). A block with a fused ReLU or sum becomes a ``torch.fx.GraphModule`` in the prepared copy.
Under bf16 autocast the CPU
would also run 3D max-pools in fp32 (a cast of the whole activation map up and back down around
each of C3D's pools); :func:`max_pool_in_input_dtype` keeps them in bf16, which is exact for a
maximum; a non-overlapping pool that reads a ReLU's output (C3D's pool1–pool4; pool5 pads) takes
its maxima as int16, 2.3–2.5× faster than ATen's bf16 pooling (:class:`_SameDtypeMaxPool3d`). The first layer's RGB input can be
padded to four channels where that measures faster (:class:`PackedConv3d`).
``python -m benchmarks.models`` reports the gain (before/after in ``BENCHMARKS.md``) and
``python -m benchmarks.fast_layers`` times each layer-level choice.

``torch.compile`` (optional: a cold compile costs seconds to tens of seconds) runs with inductor's
``freezing`` for inference, which constant-folds the weights and picks their layout;
:attr:`InferenceModel.compile_seconds` records the time of the first (compiling) call.

The memory allocator matters too: preloading tcmalloc (``LD_PRELOAD=.../libtcmalloc_minimal.so.4``)
speeds up 3D-conv training on CPU; see ``benchmarks/README_speed.md``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from vidnets.utils.device import autocast as _autocast
from vidnets.utils.device import autocast_dtype

__all__ = [
    "resolve_precision",
    "precision_name",
    "to_channels_last",
    "model_to_channels_last",
    "OneDNNConv3d",
    "use_onednn_conv3d",
    "PackedConv3d",
    "pack_conv3d",
    "max_pool_in_input_dtype",
    "find_conv_relu_pairs",
    "fuse_conv_relu",
    "training_context",
    "prepare_model",
    "grad_scaler",
    "find_conv_bn_pairs",
    "fold_batchnorm",
    "InferenceModel",
    "prepare_for_inference",
    "ParityReport",
    "parity_check",
    "PARITY_TOLERANCE",
]

logger = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_POOLS = (nn.MaxPool3d, nn.AdaptiveMaxPool3d)

# Relative L2 error allowed between fp32 logits and the fast path's, per compute dtype.
# bf16 keeps 8 mantissa bits (rel. precision 2^-8 ≈ 0.4 %); errors grow with depth, and measured
# relative errors on 3D ResNets stay around 1 %, so 5 % leaves headroom without hiding real bugs
# (a wrong fold or layout gives errors of order 100 %). fp32 paths differ only by summation order.
PARITY_TOLERANCE: dict[torch.dtype | None, float] = {
    None: 1e-4,
    torch.float32: 1e-4,
    torch.bfloat16: 5e-2,
    torch.float16: 1e-2,
}


# -- precision and layout --------------------------------------------------------------------
def resolve_precision(device: torch.device | str, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None`` means plain fp32)."""
    return autocast_dtype(torch.device(device), precision)


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last layout: NDHWC strides for 5-D tensors, NHWC for 4-D, else unchanged.

    Only the strides change (shape stays ``N, C, T, H, W``), so models need no edits.
    """
    if x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


@torch.no_grad()
def model_to_channels_last(model: nn.Module) -> nn.Module:
    """Convert every 5-D parameter/buffer (3D conv kernels) to channels_last_3d and every 4-D one
    to channels_last, in place. Works for models that mix 2D and 3D convolutions, where
    ``model.to(memory_format=torch.channels_last_3d)`` would fail on the 4-D kernels."""
    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            q = to_channels_last(p.data)
            if q.data_ptr() != p.data_ptr():
                p.data = q
        for name, b in list(module.named_buffers(recurse=False)):
            if b is not None and b.dim() in (4, 5):
                module._buffers[name] = to_channels_last(b)
    return model


class OneDNNConv3d(nn.Conv3d):
    """``nn.Conv3d`` that runs oneDNN on the CPU whatever the batch size (see the module docstring).

    Same parameters, state dict and results (fp32: equal up to summation order) as ``nn.Conv3d``;
    under CPU autocast it computes in the autocast dtype, as ``F.conv3d`` would. CUDA, fp16,
    string padding, non-zero padding modes and unbatched inputs take ``nn.Conv3d``'s own path.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (
            input.device.type != "cpu"
            or input.dim() != 5
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or not torch.backends.mkldnn.is_available()
        ):
            return super()._conv_forward(input, weight, bias)
        if torch.is_autocast_enabled("cpu"):
            dtype = torch.get_autocast_dtype("cpu")
            input, weight = input.to(dtype), weight.to(dtype)
            bias = bias.to(dtype) if bias is not None else None
        if input.dtype not in (torch.float32, torch.bfloat16) or weight.dtype != input.dtype:
            return super()._conv_forward(input, weight, bias)
        return torch.ops.aten.mkldnn_convolution(
            input, weight, bias, self.padding, self.stride, self.dilation, self.groups
        )


def use_onednn_conv3d(model: nn.Module) -> nn.Module:
    """Make every plain ``nn.Conv3d`` of ``model`` an :class:`OneDNNConv3d`, in place.

    Only the class changes (parameters keep their identity, so an optimizer built before stays
    valid). Call it after anything that traces the model with ``torch.fx`` (Conv+BN folding).
    """
    for module in model.modules():
        if type(module) is nn.Conv3d:
            module.__class__ = OneDNNConv3d
    return model


# oneDNN's own convolution entry with post-ops, and its weight reorder (the ops inductor's freezing
# uses); older builds without them keep the plain OneDNNConv3d path
_POINTWISE = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
_REORDER = getattr(torch.ops.mkldnn, "_reorder_convolution_weight", None)
_PADDING_MARGIN = 0.95  # PackedConv3d pads its input when that is at least 5 % faster
_PACKED_SHAPES = 4  # input shapes whose packed weights a PackedConv3d keeps (batch sizes of a server)


class PackedConv3d(OneDNNConv3d):
    """An inference-only :class:`OneDNNConv3d`: its weight reordered once per input shape into the
    blocked layout oneDNN computes in (instead of on every call), and ``activation="relu"``
    applies the ReLU that followed it inside the convolution (a oneDNN post-op); called with a
    ``residual``, it adds that before the activation (a residual block's ``relu(conv(x) + skip)``).

    An odd number of input channels (RGB's 3) can be padded with one zero channel (and a zero
    weight slice), which changes no output. oneDNN's bf16 AMX kernels pair input channels: on a
    2-vCPU Xeon with AMX, res3d18's 3×7×7 stem ran 2.2× (batch 8) and 2.9× (batch 1) faster in
    bf16 with 4 channels than with 3, C3D's 3×3×3 conv1a 1.15× and 1.50×; in fp32 padding was
    0.74–0.87× (``python -m benchmarks.fast_layers``). Whether it pays depends on the CPU, the
    precision and the kernel, so ``pad_odd_channels=None`` (the default) times both once per input
    shape, on its first call (the fastest of three calls each way), and pads when that is at least
    5 % faster; ``True``/``False`` force it.

    The packed copies live outside the state dict and are rebuilt when the weight changes in place;
    anything :class:`OneDNNConv3d` hands to ``nn.Conv3d`` (CUDA, fp16, string padding…) takes that
    path, followed by the ReLU.
    """

    activation: str = "none"  # or "relu"
    pad_odd_channels: bool | None = None  # None: measured per input shape

    def forward(self, input: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """The convolution of ``input``, plus ``residual`` when given, then ``activation``."""
        autocast = input.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        dtype = torch.get_autocast_dtype("cpu") if autocast else input.dtype
        if not self._packable(input, dtype, autocast):
            out = super().forward(input)
            out = out if residual is None else out + residual
            return torch.relu(out) if self.activation == "relu" else out
        input = input.to(dtype)
        weight, padded = self._packed(input)
        if padded:
            input = _pad_channels(input)
        if residual is not None:
            residual = residual.to(dtype).contiguous(memory_format=_memory_format(input))
        return self._run(input, weight, residual)

    def _run(self, input: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        bias = self.bias.to(input.dtype) if self.bias is not None else None
        args = (list(self.padding), list(self.stride), list(self.dilation), self.groups)
        if residual is None:
            return _POINTWISE(input, weight, bias, *args, self.activation, [], "")
        return _POINTWISE.binary(input, residual, weight, bias, *args, "add", 1.0, self.activation, [], "")

    def _packable(self, input: torch.Tensor, dtype: torch.dtype, autocast: bool) -> bool:
        return (
            _POINTWISE is not None
            and _REORDER is not None
            and torch.backends.mkldnn.is_available()
            and input.device.type == "cpu"
            and input.dim() == 5
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and not self.weight.requires_grad
            and dtype in (torch.float32, torch.bfloat16)
            and (self.weight.dtype == dtype or (autocast and self.weight.dtype == torch.float32))
        )

    def _packed(self, input: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The weight in ``input``'s dtype, reordered for its shape, and whether the input is to be
        padded by a zero channel (cached per shape and weight version)."""
        cache = self.__dict__.setdefault("_packed_weights", {})
        # inference tensors (a model prepared inside ``torch.inference_mode``) keep no version counter
        version = None if self.weight.is_inference() else self.weight._version
        key = (tuple(input.shape), input.dtype, version)
        entry = cache.get(key)
        if entry is None:
            if len(cache) >= _PACKED_SHAPES:
                cache.clear()
            entry = cache[key] = self._pack(input)
        return entry

    def _pack(self, input: torch.Tensor) -> tuple[torch.Tensor, bool]:
        weight = self.weight.detach().to(input.dtype)
        plain = self._reorder(weight, input.shape)
        if self.groups != 1 or self.in_channels % 2 == 0 or self.pad_odd_channels is False:
            return plain, False
        padded_input = _pad_channels(input)
        padded = self._reorder(nn.functional.pad(weight, (0, 0, 0, 0, 0, 0, 0, 1)), padded_input.shape)
        if self.pad_odd_channels:
            return padded, True
        decisions = self.__dict__.setdefault("_padding_decisions", {})
        key = (tuple(input.shape), input.dtype)
        if key not in decisions:
            plain_s, padded_s = _fastest_seconds(
                lambda: self._run(input, plain), lambda: self._run(padded_input, padded)
            )
            # padded only when clearly faster: a load spike on a shared CPU must not pick the slower way
            decisions[key] = padded_s < _PADDING_MARGIN * plain_s
            logger.debug(
                "%s: %d input channels %s (%.1f ms padded, %.1f ms not) for %s",
                type(self).__name__,
                self.in_channels,
                "padded by one" if decisions[key] else "kept",
                padded_s * 1e3,
                plain_s * 1e3,
                tuple(input.shape),
            )
        return (padded, True) if decisions[key] else (plain, False)

    def _reorder(self, weight: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        args = (list(self.padding), list(self.stride), list(self.dilation), self.groups)
        return _REORDER(weight, *args, list(shape))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_packed_weights", None)  # oneDNN tensors do not copy or pickle; rebuilt on the next call
        state.pop("_padding_decisions", None)  # timed on this machine; measured again where it is loaded
        return state

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", activation={self.activation}" if self.activation != "none" else "")


def _pad_channels(x: torch.Tensor) -> torch.Tensor:
    """``x`` with one more channel, of zeros (in ``x``'s layout: ``F.pad`` keeps it)."""
    return nn.functional.pad(x, (0, 0, 0, 0, 0, 0, 0, 1))


def _fastest_seconds(*calls: Callable[[], Any], rounds: int = 3) -> list[float]:
    """Fastest of ``rounds`` interleaved timings of each call, after one untimed call of each."""
    best = [math.inf] * len(calls)
    for round_ in range(rounds + 1):
        for i, call in enumerate(calls):
            t0 = time.perf_counter()
            call()
            if round_:
                best[i] = min(best[i], time.perf_counter() - t0)
    return best


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last_3d
        if x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous()
        else torch.contiguous_format
    )


def pack_conv3d(model: nn.Module) -> nn.Module:
    """Make every 3D convolution of ``model`` a :class:`PackedConv3d`, in place (inference only)."""
    for module in model.modules():
        if type(module) in (nn.Conv3d, OneDNNConv3d):
            module.__class__ = PackedConv3d
    return model


class _SameDtypeMaxPool3d(nn.MaxPool3d):
    """``nn.MaxPool3d`` in its input's dtype: CPU autocast would run it in fp32, casting a bf16
    activation map up and the next convolution casting it back down; a maximum is exact in any dtype.

    ``nonnegative_input`` (set by :func:`max_pool_in_input_dtype` on a pool that reads a ReLU's
    output) lets a non-overlapping pool of bf16/fp16 maps take the maximum of its window's strided
    views as int16 (:func:`_max_pool_as_int16`): the same result, 2.5× and 2.3× faster than
    ATen's bf16 pooling on C3D's pool1 and pool2 at batch 8 (2-vCPU Xeon with AMX,
    ``python -m benchmarks.fast_layers``).
    """

    nonnegative_input: bool = False

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        with torch.autocast(input.device.type, enabled=False):
            if self.nonnegative_input and _int16_poolable(self, input):
                return _max_pool_as_int16(input, _triple(self.kernel_size))
            return super().forward(input)


# below this, a window's several int16 maxima can cost more than ATen's one call (on the 2-vCPU Xeon,
# C3D's pool4 at batch 1, 0.4 M elements, ran slower this way and pool3, 1.6 M, faster)
_INT16_POOL_MIN_ELEMENTS = 1 << 20


def _triple(v: Any) -> tuple[int, int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v, v)  # type: ignore[return-value]


def _int16_poolable(pool: nn.MaxPool3d, x: torch.Tensor) -> bool:
    """Windows that tile ``x`` without overlap or padding (a ceil-mode pool only where it divides)."""
    kernel = _triple(pool.kernel_size)
    return (
        x.dtype in (torch.bfloat16, torch.float16)
        and x.dim() == 5
        and not pool.return_indices
        and _triple(pool.stride) == kernel
        and math.prod(kernel) > 1
        and _triple(pool.padding) == (0, 0, 0)
        and _triple(pool.dilation) == (1, 1, 1)
        and (not pool.ceil_mode or all(n % k == 0 for n, k in zip(x.shape[2:], kernel)))
        and all(n >= k for n, k in zip(x.shape[2:], kernel))
        and x.numel() >= _INT16_POOL_MIN_ELEMENTS
    )


def _max_pool_as_int16(x: torch.Tensor, kernel: tuple[int, int, int]) -> torch.Tensor:
    """Max-pool of a non-negative half-precision map, with windows ``kernel`` = stride (of two or
    more elements).

    For non-negative IEEE numbers (bf16, fp16) the bit patterns, read as int16, are ordered like
    the values, so the maximum of the window's strided views as int16 is the pooled map; ATen's
    int16 maxima ran C3D's pool1 and pool2 2.3–2.5× faster than its bf16 pooling. -0 reads as the
    smallest int16 and loses to +0 (equal values); NaN with the sign bit set would lose too, but a
    ReLU does not make one.
    """
    kt, kh, kw = kernel
    bits = x.view(torch.int16)
    t, h, w = (n // k * k for n, k in zip(x.shape[2:], kernel))

    views = [bits[:, :, a:t:kt, b:h:kh, c:w:kw] for a in range(kt) for b in range(kh) for c in range(kw)]
    out = torch.maximum(views[0], views[1])  # a new map, in the layout of x (TensorIterator keeps it)
    for view in views[2:]:
        torch.maximum(out, view, out=out)
    return out.view(x.dtype)


class _SameDtypeAdaptiveMaxPool3d(nn.AdaptiveMaxPool3d):
    __doc__ = nn.AdaptiveMaxPool3d.__doc__

    def forward(self, input: torch.Tensor):
        with torch.autocast(input.device.type, enabled=False):
            return super().forward(input)


def max_pool_in_input_dtype(model: nn.Module) -> nn.Module:
    """Let every 3D max-pool of ``model`` run in its input's dtype under autocast, in place; pools
    that read a ReLU's output (a fused :class:`PackedConv3d`'s too, through ``nn.Identity``
    modules, found with ``torch.fx`` as for Conv+BN folding) are marked ``nonnegative_input``."""
    swaps = {nn.MaxPool3d: _SameDtypeMaxPool3d, nn.AdaptiveMaxPool3d: _SameDtypeAdaptiveMaxPool3d}
    for module in model.modules():
        if type(module) in swaps:
            module.__class__ = swaps[type(module)]
    for _, pool in _find_pairs(model, "", _pools_after_relu):
        model.get_submodule(pool).nonnegative_input = True
    return model


def _pools_after_relu(model: nn.Module, graph: "torch.fx.Graph") -> list[tuple[str, str]]:
    """(source, pool) for each 3D max-pool module whose input is a ReLU's output."""
    import torch.fx

    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.MaxPool3d):
            continue
        src = node.args[0] if node.args else None
        while (
            isinstance(src, torch.fx.Node) and src.op == "call_module" and type(modules.get(src.target)) is nn.Identity
        ):
            src = src.args[0]
        if isinstance(src, torch.fx.Node) and _makes_nonnegative(src, modules):
            pairs.append((str(src.target), node.target))
    return pairs


def _makes_nonnegative(node: Any, modules: dict) -> bool:
    if node.op == "call_module":
        module = modules.get(node.target)
        return isinstance(module, (nn.ReLU, nn.ReLU6)) or (
            isinstance(module, PackedConv3d) and module.activation == "relu"
        )
    return _is_relu(node, modules)


def training_context(device: torch.device | str, precision: str | torch.dtype | None = "auto") -> ContextManager:
    """Autocast for a training (or eval) step: ``precision`` is a name or a dtype from
    :func:`resolve_precision`; fp32 gives a no-op context."""
    device = torch.device(device)
    dtype = resolve_precision(device, precision) if isinstance(precision, str) else precision
    if dtype == torch.float32:
        dtype = None
    return _autocast(device, dtype)


def prepare_model(
    model: nn.Module, device: torch.device | str, *, channels_last: bool = True, onednn: bool = True
) -> nn.Module:
    """Move ``model`` to ``device`` and (by default) to channels-last weights and oneDNN 3D
    convolutions (:func:`use_onednn_conv3d`), in place: the trainer's fast path, also used by
    ``vidnets test`` and ``predict`` (which keep the model as trained: no folding).

    For training, call it before creating the optimizer: the parameters keep their identity, but their
    storage changes. Autocast is per step (:func:`training_context`); the weights and the
    optimizer state stay fp32.
    """
    model.to(torch.device(device))
    if channels_last:
        model_to_channels_last(model)
    if onednn:
        use_onednn_conv3d(model)
    return model


def grad_scaler(device: torch.device | str, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A loss scaler that is enabled only for fp16 (bf16 has fp32's range and needs none)."""
    device = torch.device(device)
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


# -- Conv + BN folding -------------------------------------------------------------------------
def find_conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``(conv_name, bn_name)`` for every convolution whose output feeds only a BatchNorm of the
    same dimensionality, each module used once.

    Traces ``model``'s forward with ``torch.fx``; where a forward cannot be traced (shape
    unpacking, data-dependent control flow), each child module is traced on its own instead,
    recursively, so pairs inside traceable blocks are still found. A pair whose convolution and
    BatchNorm are called from an untraceable forward is left alone (never folded wrongly).
    """
    return _find_pairs(model, "")


def _find_pairs(module: nn.Module, prefix: str, match: Any = None) -> list[tuple[str, str]]:
    """Pairs ``match(module, graph)`` finds in ``module``'s traced forward (default: Conv+BN); for
    an untraceable forward, its children are searched one by one."""
    match = match or _bn_pairs
    try:
        return [(prefix + c, prefix + b) for c, b in match(module, _trace(module))]
    except Exception:  # untraceable forward
        pass
    pairs = []
    for name, child in module.named_children():
        if not isinstance(child, (*_CONVS, *_BNS)):
            pairs += _find_pairs(child, f"{prefix}{name}.", match)
    return pairs


def _compatible(conv: nn.Module, bn: nn.Module) -> bool:
    dims = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}
    bn_type = next((b for c, b in dims.items() if isinstance(conv, c)), None)
    return (
        type(bn) is bn_type
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
    )


def _trace(model: nn.Module) -> "torch.fx.Graph":
    """``model``'s forward as a ``torch.fx`` graph whose convolutions and pools (``OneDNNConv3d``,
    the fast path's pools and user subclasses too) stay call_module nodes."""
    import torch.fx

    class ConvLeafTracer(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return isinstance(m, (*_CONVS, *_POOLS)) or super().is_leaf_module(m, qualname)

    return ConvLeafTracer().trace(model)


def _call_counts(graph: "torch.fx.Graph") -> dict[str, int]:
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    return calls


def _pairs_from_fx(model: nn.Module) -> list[tuple[str, str]]:
    return _bn_pairs(model, _trace(model))


def _bn_pairs(model: nn.Module, graph: "torch.fx.Graph") -> list[tuple[str, str]]:
    import torch.fx

    modules = dict(model.named_modules())
    calls = _call_counts(graph)
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), _BNS):
            continue
        src = node.args[0] if node.args else None
        if not isinstance(src, torch.fx.Node) or src.op != "call_module":
            continue
        conv, bn = modules.get(src.target), modules[node.target]
        if (
            isinstance(conv, _CONVS)
            and _compatible(conv, bn)
            and len(src.users) == 1
            and calls[src.target] == 1
            and calls[node.target] == 1
        ):
            pairs.append((src.target, node.target))
    return pairs


def _relu_pairs(model: nn.Module, graph: "torch.fx.Graph") -> list[tuple[str, str]]:
    """(conv, relu) for each plain 3D convolution whose output goes only, through ``nn.Identity``
    modules (folded BatchNorms), into an ``nn.ReLU`` module; each module called once."""
    import torch.fx

    modules = dict(model.named_modules())
    calls = _call_counts(graph)

    def single_call(node: Any, kinds: tuple) -> bool:
        return (
            isinstance(node, torch.fx.Node)
            and node.op == "call_module"
            and calls[node.target] == 1
            and type(modules.get(node.target)) in kinds
            and len(node.users) == 1
        )

    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or type(modules.get(node.target)) is not nn.ReLU or calls[node.target] != 1:
            continue
        src = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        while single_call(src, (nn.Identity,)):
            src = src.args[0]
        if single_call(src, (nn.Conv3d, OneDNNConv3d)) or (
            single_call(src, (PackedConv3d,)) and modules[src.target].activation == "none"
        ):
            pairs.append((src.target, node.target))
    return pairs


def find_conv_relu_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``(conv_name, relu_name)`` for every 3D convolution whose output feeds only an ``nn.ReLU``
    module (directly or through the ``nn.Identity`` a folded BatchNorm leaves), each called once;
    found like :func:`find_conv_bn_pairs`."""
    return _find_pairs(model, "", _relu_pairs)


@torch.no_grad()
def fuse_conv_relu(model: nn.Module) -> list[tuple[str, str]]:
    """Fuse ReLUs into the 3D convolutions before them, in place; inference only (the packed
    weights are frozen). Returns ``(conv, relu)`` pairs.

    First each pair of :func:`find_conv_relu_pairs` is fused by swapping modules (the model and its
    containers keep their classes): the convolution becomes a :class:`PackedConv3d` with the ReLU,
    the ReLU ``nn.Identity``. Then, inside each block (a non-container submodule) whose forward
    ``torch.fx`` can trace, every remaining ``relu(conv(x))`` and ``relu(conv(x) + skip)`` whose
    convolution output goes nowhere else becomes one :class:`PackedConv3d` call: a residual block's
    shared ReLU module and its sum. Such a block becomes a ``torch.fx.GraphModule`` of the same name
    and class name; the pair's second item is then ``"relu"`` or ``"add+relu"``.
    """
    pairs = find_conv_relu_pairs(model)
    for conv_name, relu_name in pairs:
        conv = model.get_submodule(conv_name)
        conv.__class__ = PackedConv3d
        conv.activation = "relu"
        _set_submodule(model, relu_name, nn.Identity())
    return pairs + _fuse_in_children(model, "")


def _fusable_conv(node: Any, modules: dict, calls: dict) -> Any:
    """The plain 3D convolution node behind ``node`` (through single-use ``nn.Identity`` nodes), if
    its output goes nowhere else and it is called once; else None."""
    import torch.fx

    def single(n: Any) -> bool:
        return isinstance(n, torch.fx.Node) and n.op == "call_module" and calls[n.target] == 1 and len(n.users) == 1

    chain = []
    while single(node) and type(modules.get(node.target)) is nn.Identity:
        chain.append(node)
        node = node.args[0]
    conv = modules.get(node.target) if single(node) else None
    plain = type(conv) in (nn.Conv3d, OneDNNConv3d) or (type(conv) is PackedConv3d and conv.activation == "none")
    return (node, chain) if plain and len(node.args) == 1 and not node.kwargs else None


def _is_relu(node: Any, modules: dict) -> bool:
    if node.op == "call_module":
        return type(modules.get(node.target)) is nn.ReLU
    return (
        node.op == "call_function"
        and node.target in (torch.relu, torch.relu_, nn.functional.relu)
        and len(node.args) == 1
        and not node.kwargs
    )


def _is_add(node: Any) -> bool:
    import operator

    return (
        node.op == "call_function"
        and node.target in (operator.add, torch.add)
        and len(node.args) == 2
        and not node.kwargs
        and len(node.users) == 1
    )


def _rewrite_relus(module: nn.Module, graph: "torch.fx.Graph") -> list[tuple[str, str]]:
    """In ``graph`` (of ``module``), each ``relu(conv(x))`` and ``relu(conv(x) + skip)`` becomes
    one call of the convolution as a :class:`PackedConv3d` with the ReLU (and the sum) fused;
    returns ``(conv, what)`` pairs. ``module`` keeps its submodules; the graph is edited in place."""
    modules = dict(module.named_modules())
    calls = _call_counts(graph)
    fused = []
    for node in list(graph.nodes):
        if node.op not in ("call_module", "call_function") or not _is_relu(node, modules):
            continue
        src, found, residual = node.args[0], None, None
        is_sum = _is_add(src)
        if is_sum:
            for a, b in (src.args, src.args[::-1]):
                found, residual = _fusable_conv(a, modules, calls), b
                if found:
                    break
        else:
            found = _fusable_conv(src, modules, calls)
        if not found:
            continue
        conv_node, chain = found
        with graph.inserting_before(node):
            new = graph.call_module(conv_node.target, (conv_node.args[0], *([residual] if is_sum else [])))
        node.replace_all_uses_with(new)
        for dead in [node, *([src] if is_sum else []), *chain, conv_node]:
            graph.erase_node(dead)
        conv = modules[conv_node.target]
        conv.__class__, conv.activation = PackedConv3d, "relu"
        fused.append((conv_node.target, "add+relu" if is_sum else "relu"))
    return fused


def _fuse_in_children(module: nn.Module, prefix: str) -> list[tuple[str, str]]:
    """Rewrite each traceable child block of ``module`` with :func:`_rewrite_relus` (a
    ``GraphModule`` of the same name takes its place when anything was fused); containers
    (``nn.Sequential``…) keep their type and are searched inside, as are untraceable blocks."""
    import torch.fx

    fused = []
    for name, child in list(module.named_children()):
        if not any(True for _ in child.children()):
            continue  # a leaf: nothing to fuse inside
        if isinstance(child, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            fused += _fuse_in_children(child, f"{prefix}{name}.")
            continue
        try:
            graph = _trace(child)
        except Exception:  # untraceable forward: look inside
            fused += _fuse_in_children(child, f"{prefix}{name}.")
            continue
        pairs = _rewrite_relus(child, graph)
        if pairs:
            graph.lint()
            setattr(module, name, torch.fx.GraphModule(child, graph, class_name=type(child).__name__))
            fused += [(f"{prefix}{name}.{conv}", what) for conv, what in pairs]
    return fused


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> list[tuple[str, str]]:
    """Fold each BatchNorm into the convolution before it, in place; returns the folded pairs.

    The model must be in eval mode (folding uses the running statistics, so a folded model can
    no longer train its BatchNorms). Each convolution is replaced by the fused one (with a bias)
    and each folded BatchNorm by ``nn.Identity``.
    """
    if model.training:
        raise ValueError("fold_batchnorm: call model.eval() first (folding uses BN running statistics)")
    pairs = find_conv_bn_pairs(model)
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        _set_submodule(model, conv_name, fuse_conv_bn_eval(conv, bn))
        _set_submodule(model, bn_name, nn.Identity())
    return pairs


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


# -- inference wrapper -------------------------------------------------------------------------
class InferenceModel(nn.Module):
    """A model prepared for inference: call it with fp32 NCDHW clips, get fp32 logits.

    The wrapper moves inputs to the model's device and layout, runs under ``inference_mode`` and
    autocast, and returns fp32 outputs. ``module`` is the (folded, converted, possibly compiled)
    network; ``original`` is left untouched when ``prepare_for_inference(copy=True)``.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        device: torch.device,
        dtype: torch.dtype | None,
        channels_last: bool,
        folded: list[tuple[str, str]],
        compiled: bool,
        input_dtype: torch.dtype | None = None,
        fused: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__()
        self.module = module
        self.device = device
        self.dtype = dtype
        self.channels_last = channels_last
        self.folded = folded
        self.fused = fused or []
        self.compiled = compiled
        self.input_dtype = input_dtype
        self.compile_seconds: float | None = None
        self.training = False

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    def extra_repr(self) -> str:
        return (
            f"precision={self.precision}, channels_last={self.channels_last}, "
            f"folded={len(self.folded)}, fused={len(self.fused)}, compiled={self.compiled}"
        )

    def __getattr__(self, name: str) -> Any:
        """Model attributes the engine reads (``default_input``, ``first_conv``…) come from the network."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["module"], name)

    def train(self, mode: bool = True) -> "InferenceModel":
        if mode:
            raise RuntimeError("InferenceModel is for inference only; train the original model")
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = {5: torch.channels_last_3d, 4: torch.channels_last}.get(x.dim()) if self.channels_last else None
        # dtype first, then layout: ATen's combined cast-and-permute of a 3-channel clip ran 1.3–1.5×
        # slower than the two copies (python -m benchmarks.fast_layers, 2-vCPU Xeon)
        x = x.to(self.device, dtype=self.input_dtype, non_blocking=True)
        x = x.contiguous(memory_format=layout) if layout is not None else x
        freezing = _freezing() if self.compiled else contextlib.nullcontext()
        first = self.compiled and self.compile_seconds is None
        t0 = time.perf_counter()
        with torch.inference_mode(), _autocast(self.device, self.dtype), freezing:
            out = self.module(x)
        if first:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_seconds = time.perf_counter() - t0
        return out.float() if out.is_floating_point() else out


def _freezing() -> ContextManager:
    import torch._inductor.config as inductor_config

    return inductor_config.patch(freezing=True)


def prepare_for_inference(
    model: nn.Module,
    *,
    precision: str = "auto",
    channels_last: bool = True,
    fold_bn: bool = True,
    onednn: bool = True,
    fuse: bool = True,
    compile: bool = False,
    cast_weights: bool = True,
    device: torch.device | str | None = None,
    example_input: torch.Tensor | None = None,
    copy: bool = True,
) -> InferenceModel:
    """Wrap ``model`` for fast inference (see the module docstring): the one way a trained model is
    readied for evaluation (``vidnets test``, ``predict``, ``features`` and the benchmarks).

    Parameters
    ----------
    precision : ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` — autocast dtype (see :func:`resolve_precision`).
    channels_last : run convolutions on channels-last weights and inputs.
    fold_bn : fold Conv+BatchNorm pairs (listed in ``InferenceModel.folded``).
    onednn : run 3D convolutions on oneDNN at every batch size (:func:`use_onednn_conv3d`); not
        with ``compile``, where inductor lowers the convolutions itself.
    fuse : with ``onednn`` on a CPU, pack each 3D convolution's weight once for oneDNN and fuse the
        ReLU after it (:func:`fuse_conv_relu`, listed in ``InferenceModel.fused``); the ReLU
        modules become ``nn.Identity``, so turn it off to read activations by layer name. Under
        bf16 autocast, 3D max-pools also run in bf16, as int16 maxima where they read a ReLU's
        output (:func:`max_pool_in_input_dtype`), and a 3-channel input is padded to 4 where that
        measures faster (:class:`PackedConv3d`).
    compile : ``torch.compile`` with inductor freezing; the first call compiles.
    cast_weights : with bf16/fp16, store convolution and linear weights (and feed the input) in
        that dtype instead of letting autocast cast every weight on every call; autocast stays on
        for everything else. Same results (autocast would compute those convolutions in bf16 anyway), about
        10 % faster for a 3D ResNet-18 on CPU.
    device : where to run; default the device of the model's parameters.
    example_input : if given, one call is made at once (with ``compile`` this measures
        ``compile_seconds`` here rather than on the first real call).
    copy : work on a deep copy so ``model`` stays a trainable fp32 model (default); ``False``
        converts ``model`` itself, saving the memory of a second copy.
    """
    if copy:
        model = _deepcopy(model)
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device).eval()
    dtype = resolve_precision(device, precision)
    folded, fused = _convert_for_inference(
        model,
        device,
        dtype,
        channels_last=channels_last,
        fold_bn=fold_bn,
        onednn=onednn,
        fuse=fuse,
        compile=compile,
        cast_weights=cast_weights,
    )
    module: nn.Module = torch.compile(model) if compile else model
    fast = InferenceModel(
        module,
        device=device,
        dtype=dtype,
        channels_last=channels_last,
        folded=folded,
        compiled=compile,
        input_dtype=dtype if cast_weights else None,
        fused=fused,
    )
    if example_input is not None:
        fast(example_input)
    return fast


def _convert_for_inference(
    model: nn.Module,
    device: torch.device,
    dtype: torch.dtype | None,
    *,
    channels_last: bool,
    fold_bn: bool,
    onednn: bool,
    fuse: bool,
    compile: bool,
    cast_weights: bool,
) -> tuple[list, list]:
    """The in-place steps of :func:`prepare_for_inference`, in order; returns (folded, fused) pairs."""
    folded = fold_batchnorm(model) if fold_bn else []
    packed = onednn and fuse and not compile and device.type == "cpu"
    fused = fuse_conv_relu(model) if packed else []
    if channels_last:
        model_to_channels_last(model)
    if cast_weights and dtype is not None:
        _cast_conv_and_linear(model, dtype)
    if onednn and not compile:
        use_onednn_conv3d(model)
    if packed:
        pack_conv3d(model)
        if dtype is not None:
            max_pool_in_input_dtype(model)
    for p in model.parameters():
        p.requires_grad_(False)
    return folded, fused


def _cast_conv_and_linear(model: nn.Module, dtype: torch.dtype) -> None:
    """Store the weights autocast would cast on every call (convolutions, linear layers) in
    ``dtype``; norms and everything else stay fp32, as autocast expects."""
    for m in model.modules():
        if isinstance(m, (*_CONVS, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)):
            m.to(dtype)


def _deepcopy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)


# -- parity ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParityReport:
    """How far the fast path's logits are from the fp32 reference on one batch.

    ``rel_error`` is ``‖fast − ref‖₂ / ‖ref‖₂`` over the whole batch; ``top1_agreement`` the
    fraction of samples whose arg-max class matches; ``ok`` means ``rel_error ≤ tolerance`` and
    every top-1 agrees where the reference's top-1 margin exceeds the observed error.
    """

    rel_error: float
    max_abs_error: float
    top1_agreement: float
    tolerance: float
    precision: str
    ok: bool
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        return (
            f"{verdict}: {self.precision} rel. error {self.rel_error:.2e} (tolerance {self.tolerance:.0e}), "
            f"max abs {self.max_abs_error:.2e}, top-1 agreement {self.top1_agreement:.0%}"
        )


@torch.no_grad()
def parity_check(model: nn.Module, fast: nn.Module, x: torch.Tensor, *, tolerance: float | None = None) -> ParityReport:
    """Compare ``fast(x)`` with the fp32 eval-mode reference ``model(x)``.

    The reference runs without autocast on NCDHW inputs, on ``model``'s own device. Top-1
    disagreements count against ``ok`` only where the reference's margin between its two best
    classes exceeds twice the largest error seen (near-ties may flip legitimately in bf16).
    """
    was_training = model.training
    model.eval()
    try:
        dev = next(iter(model.parameters())).device
        ref = model(x.to(dev)).float().cpu()
    finally:
        model.train(was_training)
    out = fast(x).float().cpu()
    if out.shape != ref.shape:
        raise ValueError(f"parity_check: fast path gives shape {tuple(out.shape)}, reference {tuple(ref.shape)}")
    dtype = getattr(fast, "dtype", None)
    tol = PARITY_TOLERANCE.get(dtype, 5e-2) if tolerance is None else tolerance
    diff = out - ref
    rel = (diff.norm() / ref.norm().clamp_min(1e-12)).item()
    max_abs = diff.abs().max().item()
    ref2 = ref.reshape(ref.shape[0], -1)
    out2 = out.reshape(out.shape[0], -1)
    agree = ref2.argmax(1) == out2.argmax(1)
    if ref2.shape[1] > 1:
        top2 = ref2.topk(2, dim=1).values
        decisive = (top2[:, 0] - top2[:, 1]) > 2 * max_abs
    else:
        decisive = torch.ones_like(agree)
    ok = math.isfinite(rel) and rel <= tol and bool(agree[decisive].all())
    return ParityReport(
        rel_error=rel,
        max_abs_error=max_abs,
        top1_agreement=agree.float().mean().item(),
        tolerance=tol,
        precision=precision_name(dtype),
        ok=ok,
        details={"decisive_samples": int(decisive.sum()), "batch": int(ref.shape[0])},
    )
