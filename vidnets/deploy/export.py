"""``vidnets export``: a checkpoint as a self-contained network file plus its ``model.json``.

Formats (all fp32, eval mode, batch axis dynamic):

===========  ==============  ===================================================================
format       file            runs with
===========  ==============  ===================================================================
onnx         ``model.onnx``  onnxruntime (or any ONNX runtime); exported from ``torch.export``
pt2          ``model.pt2``   ``torch.export.load(path).module()`` (PyTorch, no vidnets needed)
torchscript  ``model.ts``    ``torch.jit.load(path)`` (traced; the older, deprecated format)
===========  ==============  ===================================================================

Every export is loaded back from disk through its runtime and compared with the checkpoint's eager
fp32 logits on random inputs at two batch sizes (:func:`vidnets.engine.fastpath.parity_check`:
relative L2 error within :data:`PARITY_TOLERANCES`, top-1 agreement); the result is written into
``model.json`` and a failing check writes nothing. A model a format cannot express raises
:class:`ExportError` naming the model, the format and the exporter's reason.

The folder is written atomically: the files go to a temporary folder beside ``--out`` that is
renamed into place, and an existing export is replaced only with ``overwrite``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from vidnets.deploy.contract import CONTRACT_FILE
from vidnets.deploy.runtime import load_checkpoint_model, load_runner
from vidnets.engine.fastpath import parity_check
from vidnets.utils.io import _umask, atomic_write_json

__all__ = ["FORMATS", "PARITY_TOLERANCES", "ExportError", "export_model", "check_export", "export_checkpoint"]

FORMATS = {"onnx": "model.onnx", "pt2": "model.pt2", "torchscript": "model.ts"}

#: relative L2 error allowed between an export's logits and eager fp32 (see ``parity_check``).
#: pt2 and TorchScript run the same kernels as eager mode; onnxruntime its own fp32 kernels, whose
#: summation order differs (measured ≤ 1e-6 on the registered models).
PARITY_TOLERANCES = {"onnx": 1e-4, "pt2": 1e-5, "torchscript": 1e-5}

#: the batch sizes of the parity check: a batch other than the traced one shows the axis is dynamic
PARITY_BATCHES = (1, 3)


class ExportError(ValueError):
    """The format cannot express this model, or the export does not reproduce its logits."""


@contextlib.contextmanager
def _quiet_exporter():
    """The ONNX exporter prints its progress and logs warnings about optional torchvision ops."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _exported_program(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("N", min=1)
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},), strict=False)


def export_model(
    model: nn.Module,
    example: torch.Tensor,
    fmt: str,
    path: str | Path,
    program: torch.export.ExportedProgram | None = None,
) -> dict:
    """Write ``model`` (eval mode) in format ``fmt`` to ``path``; returns facts for ``model.json``.

    ``example`` is one input batch; ``program`` reuses an ``ExportedProgram`` of the same model (ONNX
    is exported from one). Raises :class:`ExportError` with the exporter's reason when the format
    cannot express the model.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    model = model.eval()
    name = type(model).__name__
    try:
        with _torch_warnings_off():
            return _write(model, example, fmt, path, program)
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 - each exporter has its own error types; the reason is kept
        reason = " ".join(str(e).split())[:400] or type(e).__name__
        raise ExportError(f"{fmt} cannot express {name}: {type(e).__name__}: {reason}") from e


def _write(
    model: nn.Module, example: torch.Tensor, fmt: str, path: str | Path, program: torch.export.ExportedProgram | None
) -> dict:
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(model, (example,), check_trace=False)
        torch.jit.save(traced, str(path))
        return {"method": "torch.jit.trace"}
    program = program or _exported_program(model, example)
    if fmt == "pt2":
        torch.export.save(program, str(path))
        return {"method": "torch.export", "dynamic_shapes": {"clips": {"0": "N"}}}
    # keep the exporter's optimiser on: without it bias-free 3D convolutions (DenseNet3D's) get an
    # invalid bias input that onnxruntime refuses
    with _quiet_exporter():
        onnx_program = torch.onnx.export(
            program, (example,), input_names=["clips"], output_names=["logits"], dynamo=True, verbose=False
        )
        onnx_program.save(str(path))
    opsets = {d.domain or "ai.onnx": d.version for d in onnx_program.model_proto.opset_import}
    return {
        "method": "torch.onnx.export(torch.export program)",
        "opset": opsets.get("ai.onnx"),
        "dynamic_axes": {"clips": {"0": "N"}, "logits": {"0": "N"}},
    }


@contextlib.contextmanager
def _torch_warnings_off():
    """Tracing warns about every Python-level shape check (the parity check is the real test), and
    torch's exporters and loaders warn about their own deprecated internals and about TorchScript."""
    with warnings.catch_warnings():
        for category in (torch.jit.TracerWarning, FutureWarning, DeprecationWarning):
            warnings.simplefilter("ignore", category)
        yield


def check_export(model: nn.Module, fmt: str, path: str | Path, shape: tuple[int, ...], *, seed: int = 0) -> dict:
    """Load ``path`` back through its runtime and compare it with eager fp32 ``model`` at each of
    :data:`PARITY_BATCHES`; raises :class:`ExportError` when a batch is outside the tolerance."""
    generator = torch.Generator().manual_seed(seed)
    results = {}
    try:
        with _torch_warnings_off():
            runner = load_runner(fmt, path)
    except Exception as e:  # noqa: BLE001 - a file its own runtime cannot load is a failed export
        raise ExportError(
            f"{fmt} export of {type(model).__name__} does not load: {type(e).__name__}: "
            f"{' '.join(str(e).split())[:300]}"
        ) from e
    for batch in PARITY_BATCHES:
        x = torch.randn(batch, *shape, generator=generator)
        try:
            report = parity_check(model, runner, x, tolerance=PARITY_TOLERANCES[fmt])
        except Exception as e:  # noqa: BLE001 - the runtime refusing its own file is a failed export
            raise ExportError(
                f"{fmt} export of {type(model).__name__} does not run at batch {batch}: "
                f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
            ) from e
        results[str(batch)] = {
            "rel_error": report.rel_error,
            "max_abs_error": report.max_abs_error,
            "top1_agreement": report.top1_agreement,
        }
        if not report.ok:
            raise ExportError(
                f"{fmt} export of {type(model).__name__} does not reproduce its eager logits at batch {batch}: {report}"
            )
    return {
        "tolerance": PARITY_TOLERANCES[fmt],
        "metric": "relative L2 error of the logits vs eager fp32",
        "batches": results,
    }


def export_checkpoint(checkpoint: str | Path, fmt: str, out: str | Path, *, overwrite: bool = False) -> Path:
    """Export ``checkpoint`` to the folder ``out`` (network file + ``model.json``); returns ``out``."""
    out = Path(out)
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if out.exists() and not overwrite:
        raise FileExistsError(errno.EEXIST, "already exists; choose another --out or pass --overwrite", str(out))
    if out.exists() and not (out / CONTRACT_FILE).is_file():
        raise FileExistsError(
            errno.EEXIST,
            f"exists and is not an export folder (no {CONTRACT_FILE}); --overwrite "
            "replaces only an earlier export; choose another --out",
            str(out),
        )
    model, contract = load_checkpoint_model(checkpoint)
    shape = tuple(contract["input"]["shape"][1:])
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; give the folder ordinary permissions
    try:
        target = staging / FORMATS[fmt]
        facts = export_model(model, example, fmt, target)
        parity = check_export(model, fmt, target, shape)
        import vidnets

        contract["export"] = {
            "format": fmt,
            "file": FORMATS[fmt],
            "checkpoint": Path(checkpoint).name,
            "torch": torch.__version__,
            "vidnets": vidnets.__version__,
            "precision": "fp32",
            "parity": parity,
            **facts,
        }
        atomic_write_json(staging / CONTRACT_FILE, contract)
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an earlier export there is set aside first and removed only after."""
    previous = out.with_name(f".{out.name}.previous-{os.getpid()}")
    if out.exists():
        os.replace(out, previous)
    try:
        os.replace(staging, out)
    except BaseException:
        if previous.exists():
            os.replace(previous, out)
        raise
    shutil.rmtree(previous, ignore_errors=True)
