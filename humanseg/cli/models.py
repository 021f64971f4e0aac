"""`python -m humanseg models fetch NAME | list`: download model files into the humanseg cache, list them."""

from __future__ import annotations

import argparse

HELP = "fetch downloadable models (e.g. mediapipe) into the model cache, or list what is cached"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanseg.model_files import ENV_VAR, MODELS

    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch",
        help="download a model into the cache (official URL first, else from its PyPI wheel)",
        description="Download a model into the cache: the official URL first, else the copy inside its "
        "PyPI wheel (for machines that only reach package registries).",
    )
    fetch.add_argument("name", choices=sorted(MODELS), help="model to fetch")
    fetch.add_argument("--cache", default=None, help=f"cache folder (default: ${ENV_VAR} or ~/.cache/humanseg/models)")
    fetch.add_argument("--force", action="store_true", help="fetch again even if the file is already cached")
    fetch.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the official URL (default 5)")
    listing = actions.add_parser("list", help="show which models are cached, where, and from which source")
    listing.add_argument(
        "--cache", default=None, help=f"cache folder (default: ${ENV_VAR} or ~/.cache/humanseg/models)"
    )


def run(args: argparse.Namespace) -> int:
    from humanseg import model_files

    if args.models_action == "fetch":
        try:
            result = model_files.fetch_model(args.name, args.cache, force=args.force, timeout=args.timeout)
        except RuntimeError as err:
            print(f"error: {err}")
            return 1
        if result.source != "cache":
            print(f"{args.name}: {result.path} (source: {result.source}: {result.detail})")
        return 0

    print(f"model cache: {model_files.cache_dir(args.cache)}")
    for row in model_files.list_cached(args.cache):
        if row["present"]:
            extra = f"{row['bytes']} bytes, source: {row.get('source') or 'unknown'}"
            print(f"  {row['name']:<12} cached   {row['path']} ({extra})")
        else:
            cache = f" --cache {args.cache}" if args.cache else ""
            print(f"  {row['name']:<12} missing  (python -m humanseg models fetch {row['name']}{cache})")
    _list_rembg()
    return 0


def _list_rembg() -> None:
    try:
        from humanseg.segmenters.rembg_backend import installed_models
    except ImportError:
        return
    try:
        home, found = installed_models()
    except ImportError:
        print("rembg: not installed")
        return
    print(f"rembg models (rembg's own folder {home}, set U2NET_HOME to change it):")
    for name, path in found:
        print(f"  {name:<24} {path}")
    if not found:
        print(f"  none (rembg downloads a model on first use; offline, place NAME.onnx in {home / 'models' / 'NAME'})")
