"""``vidnets models``: a table of every registered architecture with its size and compute.
``vidnets convert caffe``: the authors' released ``.caffemodel`` as a vidnets checkpoint.

Models are built on the meta device, so the table costs no memory and takes seconds even for the
66 M-parameter P3D-199; MACs come from :func:`vidnets.models.complexity` (PyTorch's FlopCounterMode,
1 MAC = 1 multiply-add, convolutions and linear layers only) at each model's default input.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register", "model_rows", "run_convert_caffe"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the architectures with parameters and MACs",
        description="List every registered architecture: family, parameters, GMACs at its default input, paper.",
    )
    parser.add_argument(
        "--num-classes", type=int, default=101, help="classifier size used for the parameter count (default 101)"
    )
    parser.add_argument("--family", default=None, help="show only this family: c3d, two_stream, tsn, p3d, t3d or res3d")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)
    _register_convert(subparsers)


def _register_convert(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser(
        "convert",
        help="convert released weights into a vidnets checkpoint",
        description="Convert released weights into a checkpoint that create(NAME, weights=FILE) loads.",
    )
    kinds = convert.add_subparsers(dest="source_kind", metavar="KIND")
    caffe = kinds.add_parser(
        "caffe",
        help="a Caffe .caffemodel (C3D, Res3D, P3D, TSN), read without Caffe",
        description="Read a binary .caffemodel (no Caffe needed), map its blobs onto a vidnets model by the "
        "authors' layer names and save the weights. Reports every blob loaded, unused or missing; "
        "a blob whose shape differs from the model's is refused.",
    )
    caffe.add_argument("caffemodel", help="the .caffemodel file")
    caffe.add_argument("--arch", required=True, help="vidnets model name, e.g. c3d, res3d18, p3d199, tsn_bninception")
    caffe.add_argument("--output", help="the .pt file to write (weights, model kwargs and the report)")
    caffe.add_argument("--out", dest="output", help=argparse.SUPPRESS)  # the earlier spelling of --output
    caffe.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    caffe.add_argument("--verbose", action="store_true", help="list every blob, not only the unused and missing ones")
    caffe.set_defaults(func=run_convert_caffe)
    convert.set_defaults(func=lambda args: (convert.print_help(), 2)[1])


def model_rows(num_classes: int = 101, family: str | None = None) -> list[dict]:
    """One dict per registered model: name, family, params, macs, gmacs, default_input, paper."""
    import torch

    from vidnets.models import complexity, list_models, model_info

    rows = []
    for name in list_models(family):
        info = model_info(name)
        with torch.device("meta"):
            model = info.builder(num_classes=num_classes)
        cost = complexity(model, info.default_input)
        rows.append(
            {
                "name": name,
                "family": info.family,
                "params": cost.params,
                "macs": cost.macs,
                "gmacs": round(cost.gmacs, 2),
                "default_input": list(info.default_input),
                "paper": info.paper,
            }
        )
    return rows


def _table(rows: list[dict], num_classes: int) -> str:
    header = ("model", "family", f"params ({num_classes} cls)", "GMACs", "default input", "paper")
    body = [
        (
            r["name"],
            r["family"],
            f"{r['params']:,}",
            f"{r['gmacs']:.2f}",
            "×".join(map(str, r["default_input"])),
            r["paper"],
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in (header, *body)) for i in range(len(header))]
    numeric = {2, 3}

    def fmt(row: tuple) -> str:
        return "  ".join(
            str(c).rjust(w) if i in numeric else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()

    lines = [fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)]
    lines.append("GMACs = 10^9 multiply-adds for one sample of the default input (many papers call these FLOPs).")
    lines.append("Default input: C×T×H×W for 3D nets, K×C×H×W for TSN (K segments), C×H×W for Two-Stream.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.num_classes < 1:
        print(f"--num-classes: expected a positive integer, got {args.num_classes}", file=sys.stderr)
        return 2
    rows = model_rows(args.num_classes, args.family)
    if not rows:
        print(f"--family: no models of family {args.family!r}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else _table(rows, args.num_classes))
    return 0


def run_convert_caffe(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vidnets.models import list_models
    from vidnets.models.caffe import CaffeFormatError
    from vidnets.models.convert import CONVERTED_FORMAT, WeightsMismatchError, convert_caffemodel
    from vidnets.utils.io import atomic_torch_save

    if not args.output:
        print("--output: give the .pt file to write", file=sys.stderr)
        return 2
    out = Path(args.output)
    if args.arch not in list_models():
        print(f"--arch: unknown model {args.arch!r}; see `vidnets models`", file=sys.stderr)
        return 2
    if out.exists() and not args.overwrite:
        print(f"--output {out}: exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    try:
        model, report = convert_caffemodel(args.caffemodel, args.arch)
    except (FileNotFoundError, CaffeFormatError, WeightsMismatchError) as e:
        print(str(e), file=sys.stderr)
        return 2
    for title, entries in (("loaded", report.loaded), ("unused", report.unused), ("missing", report.missing)):
        if entries and (args.verbose or title != "loaded"):
            print(f"{title}:")
            print("\n".join(f"  {e}" for e in entries))
    payload = {
        "format": CONVERTED_FORMAT,
        "arch": args.arch,
        "kwargs": model.converted_kwargs,
        "state_dict": model.state_dict(),
        "source": str(args.caffemodel),
        "report": report.to_dict(),
    }
    atomic_torch_save(payload, out)
    print(f"{report.summary()}; wrote {out} (create({args.arch!r}, weights={str(out)!r}))")
    return 0
