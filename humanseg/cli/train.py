"""`python -m humanseg train DATASET_DIR --out RUN_DIR [options]` (also under torchrun for several processes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "train a segmentation model on a dataset built by dataset_builder (CPU, GPU or torchrun)"

#: CLI option -> TrainConfig field, for the options that override the recipe when given.
_OVERRIDES = {
    "model": "model",
    "minutes": "minutes",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "size": "size",
    "seed": "seed",
    "lr": "lr",
    "optimizer": "optimizer",
    "schedule": "schedule",
    "loss": "loss",
    "augment": "augment",
    "val_every": "val_every",
    "workers": "workers",
    "plate": "plate",
    "device": "device",
    "threads": "threads",
}


def parse_size(text: str) -> tuple[int, int]:
    """``"240x320"`` -> (240, 320) as (height, width), for argparse (which shows only its own error types)."""
    from humanseg.sizes import parse_size as parse_hxw

    try:
        return parse_hxw(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanseg.models import DEFAULT_PRESET, PRESETS
    from humanseg.train import LOSSES, OPTIMIZERS, RECIPES, SCHEDULES
    from humanseg.trainset import AUGMENTATIONS

    parser.add_argument("dataset", type=Path, help="dataset folder (images/, masks/, plates/, manifest.json)")
    parser.add_argument("--out", "-o", type=Path, required=True, help="run folder: best.pt, last.pt, curves.png")
    parser.add_argument("--model", choices=list(PRESETS), help=f"model preset (default {DEFAULT_PRESET})")
    parser.add_argument("--recipe", choices=list(RECIPES), default="default",
                        help="option set to start from; 'paper': Adam 1e-5, weighted CE, flips + rotations")  # fmt: skip
    parser.add_argument("--minutes", type=float, help="time budget in minutes (default 10 unless --epochs is given)")
    parser.add_argument("--epochs", type=int, help="number of passes over the training split")
    parser.add_argument("--val", type=Path, nargs="+", default=[], metavar="SEQ_DIR",
                        help="labelled real sequences (CDnet/SBI/DAVIS layout) scored at every validation; "
                        "best.pt is then chosen by their mean F-measure")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt exactly where it stopped")
    parser.add_argument("--batch-size", type=int, help="images per step per process (default 8)")
    parser.add_argument("--size", type=parse_size, metavar="HxW", help="training size, e.g. 240x320 (default: preset)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--schedule", choices=SCHEDULES)
    parser.add_argument("--loss", choices=LOSSES)
    parser.add_argument("--augment", choices=AUGMENTATIONS)
    parser.add_argument("--val-every", type=int, metavar="STEPS", help="steps between validations (default: epoch)")
    parser.add_argument("--workers", type=int, help="threads preparing batches ahead (default 0)")
    parser.add_argument("--plate", help="plate to store with plate models: a file name in DATASET/plates")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA when available")
    parser.add_argument("--threads", type=int, help="CPU threads (default: $OMP_NUM_THREADS, else all cores)")


def build_config(args: argparse.Namespace):  # -> TrainConfig (import kept lazy)
    """The TrainConfig for ``args``: the saved one when resuming, else the recipe; explicit options on top."""
    from humanseg.train import TrainConfig, resume_config

    given = {field: getattr(args, opt) for opt, field in _OVERRIDES.items() if getattr(args, opt) is not None}
    if args.resume:
        config = resume_config(args.out, **given)
        if args.recipe != "default" and args.recipe != config.recipe:
            raise ValueError(f"{args.out} was trained with recipe {config.recipe!r}; drop --recipe {args.recipe}")
        return config
    if "epochs" in given and "minutes" not in given:
        given["minutes"] = None  # an epoch count alone means: no time limit
    return TrainConfig.from_recipe(args.recipe, **given)


def run(args: argparse.Namespace) -> int:
    from humanseg.distributed import Distributed
    from humanseg.progress import bar as progress_bar
    from humanseg.train import train

    config = build_config(args)
    main = Distributed.from_env().main  # under torchrun only rank 0 prints
    bar = None
    done = None
    try:
        for ev in train(config, args.dataset, args.out, val_sequences=args.val, resume=args.resume):
            if not main:
                continue
            if ev.kind == "start":
                print(f"device: {ev.device}; model {config.model}; {ev.metrics['train_samples']:.0f} train / "
                      f"{ev.metrics['val_samples']:.0f} val samples, {ev.metrics['steps_per_epoch']:.0f} steps per epoch"
                      + (f"; {ev.message}" if ev.message else ""), file=sys.stderr)  # fmt: skip
                bar = progress_bar(total=ev.total_steps, initial=ev.step, desc="train", unit="step")
            elif ev.kind == "step" and bar is not None:
                if ev.total_steps is not None and bar.total != ev.total_steps:
                    bar.total = ev.total_steps
                bar.update(ev.step - bar.n)
                bar.set_postfix(loss=f"{ev.loss:.4f}", lr=f"{ev.lr:.2e}", img_s=f"{ev.images_per_s:.1f}", refresh=False)
            elif ev.kind == "val":
                (bar.write if bar is not None else print)(ev.describe())
            elif ev.kind == "done":
                done = ev
    finally:
        if bar is not None:
            bar.close()
    if main and done is not None:
        f = f", last val F {done.val_f:.4f}" if done.val_f is not None else ""
        print(f"{done.message} after {done.step} steps ({done.epoch:.2f} epochs) in {done.elapsed_s:.0f} s{f}")
        print(f"best: {done.path}\nlast: {Path(args.out) / 'last.pt'}\ncurves: {Path(args.out) / 'curves.png'}")
    return 0
