"""``vidnets export | serve``.

::

    vidnets export runs/res3d/best.pt --format onnx --out exports/res3d18
    vidnets serve exports/res3d18 --port 8000          # or a checkpoint; needs vidnets[serve]
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="a checkpoint as ONNX, torch.export (pt2) or TorchScript, with its preprocessing contract (model.json)",
    )
    p.add_argument("checkpoint")
    p.add_argument("--format", required=True, choices=("onnx", "pt2", "torchscript"))
    p.add_argument("--out", required=True, help="folder to write (the network file and model.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.set_defaults(func=_export)

    p = subparsers.add_parser("serve", help="an HTTP API and web page for a checkpoint or an export folder")
    p.add_argument("model", metavar="CHECKPOINT_OR_EXPORT")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest accepted upload (default 200 MB)")
    p.add_argument(
        "--queue",
        type=int,
        default=8,
        help="requests admitted at once (running + waiting); more get 503 with Retry-After (default 8)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="videos scored in parallel (default 1; each uses all torch threads)"
    )
    p.add_argument("--batch-size", type=int, default=16, help="views per forward pass (default 16)")
    p.set_defaults(func=_serve)


def _export(args: argparse.Namespace) -> int:
    import json

    from vidnets.deploy.contract import CONTRACT_FILE
    from vidnets.deploy.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.format, args.out, overwrite=args.overwrite)
    contract = json.loads((out / CONTRACT_FILE).read_text())
    worst = max(r["rel_error"] for r in contract["export"]["parity"]["batches"].values())
    print(
        f"{out}/{contract['export']['file']} + {CONTRACT_FILE}: {contract['model']['name']}, "
        f"{len(contract['class_names'])} classes, input {contract['input']['layout']} "
        f"{contract['input']['shape']}; parity vs eager fp32: rel. error {worst:.1e} "
        f"(tolerance {contract['export']['parity']['tolerance']:.0e})"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    for flag, value in (("--queue", args.queue), ("--workers", args.workers), ("--batch-size", args.batch_size)):
        if value < 1:
            print(f"error: {flag}: expected a positive number, found {value}", file=sys.stderr)
            return 2
    try:
        import uvicorn

        from vidnets.deploy.serve import create_app
    except ImportError as e:
        print(
            f"error: vidnets serve needs the serve extra ({e.name} is missing): pip install 'vidnets[serve]'",
            file=sys.stderr,
        )
        return 2
    app = create_app(
        args.model,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        queue_size=args.queue,
        workers=args.workers,
        batch_size=args.batch_size,
    )
    print(
        f"vidnets serve: {app.state.deployment.contract['model']['name']} on http://{args.host}:{args.port}/ "
        f"(API docs at /docs)",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
