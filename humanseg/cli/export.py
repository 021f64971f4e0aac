"""`python -m humanseg export CKPT --onnx OUT.onnx [--rembg OUT.onnx [--plate IMAGE]]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "export a trained checkpoint to ONNX (dynamic size) and/or to a model rembg runs as u2net_custom"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a .pt file from `python -m humanseg train`")
    parser.add_argument("--onnx", type=Path, metavar="OUT.onnx",
                        help="plain graph: frame [+ plate] in [0, 1] -> person probability, dynamic size")  # fmt: skip
    parser.add_argument("--rembg", type=Path, metavar="OUT.onnx", help="graph for rembg's u2net_custom session")
    parser.add_argument("--plate", type=Path, metavar="IMAGE",
                        help="plate to bake into the rembg graph of a plate model (default: the checkpoint's)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from humanseg.export import export_onnx, export_rembg, onnx_max_difference, rembg_model_dirs
    from humanseg.segmenters.base import load_rgb

    if args.onnx is None and args.rembg is None:
        raise ValueError("nothing to export: give --onnx OUT.onnx and/or --rembg OUT.onnx")
    if args.plate is not None and args.rembg is None:
        raise ValueError("--plate is only used with --rembg (the --onnx graph takes the plate as an input)")
    if args.plate is not None:
        load_rgb(args.plate, "--plate")  # a bad plate is refused before the checkpoint is exported
    if args.onnx is not None:
        path = export_onnx(args.checkpoint, args.onnx)
        diff = onnx_max_difference(args.checkpoint, path)
        print(f"ONNX: {path} (max |onnxruntime - torch| on a random input: {diff:.2e})")
    if args.rembg is not None:
        path = export_rembg(args.checkpoint, args.rembg, plate=args.plate)
        print(f"rembg: {path}")
        dirs = rembg_model_dirs()
        if not any(path.resolve().is_relative_to(d) for d in dirs):
            print(f"note: rembg loads custom models only from {dirs[0]} or {dirs[1]}; copy the file there "
                  "(or set U2NET_HOME to its folder) before using it")  # fmt: skip
        extra = json.dumps({"model_path": str(path.resolve())})
        print(f"use: rembg i -m u2net_custom -x '{extra}' INPUT.png OUTPUT.png")
    return 0
