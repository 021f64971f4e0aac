"""Build the example site ``vtest`` from OpenCV's sample clip (PETS 2009 campus, fixed camera).

    python -m examples.build_site            # everything that is missing: clip copy, plates, silhouettes,
                                             # dataset, demo clip, and the demo model (copied if committed)
    python -m examples.build_site --train    # also retrain the demo model with the project's own pipeline

The clip itself comes from Debian's ``opencv-doc`` package (``scripts/fetch_vtest.sh``, run by ``make example``)
and is never committed. Every step goes through the same library functions as the CLI and the app, into the
workspace layout of ``humanseg.workspace``, so the app opens with this site ready.

The committed demo model (``examples/vtest_demo/``: a slim checkpoint and the manifest of the dataset it was
trained on) is reproduced by ``python -m examples.build_site --train --minutes 15`` (the project's promise: 15
CPU-minutes of training per site).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from humanseg.models import DEFAULT_PRESET

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "data" / "vtest.avi"
DEMO_DIR = ROOT / "examples" / "vtest_demo"

# Dataset and model settings of the demo (the committed model was trained with exactly these): the app's own
# defaults, so the example shows what a user gets. No size: the site's scale, fitted from the clip, decides it
# (input-sized windows of the plate where the camera has more pixels per person than the network needs).
DATASET_NAME = "vtest-site"
DATASET_COUNT = 1500
DATASET_SIZE = None
DEMO_MODEL = DEFAULT_PRESET
# Plate and silhouette names of the example (recorded in examples/vtest_demo/dataset_manifest.json).
PLATE_PREFIX = "vtest_plate"
SILHOUETTES = "vtest-harvest"


def build(
    workspace: Path | None = None, *, train: bool = False, minutes: float = 15.0, if_missing: bool = False
) -> int:
    """Build (or complete) the example site; returns a process exit code."""
    from dataset_builder.backgrounds import estimate_plates, save_plates
    from dataset_builder.silhouettes import extract_silhouettes
    from humanseg import site as rules
    from humanseg.video import open_frames
    from humanseg.workspace import cut_clip, open_site, resolve_workspace

    if not CLIP.is_file():
        print(
            f"The example clip {CLIP.relative_to(ROOT)} is missing: run `bash scripts/fetch_vtest.sh` (needs Debian's "
            "apt) or place any fixed-camera clip there. The app runs without the example site.",
            file=sys.stderr,
        )
        return 0 if if_missing else 1
    site = open_site(resolve_workspace(workspace), rules.EXAMPLE_SITE, create=True)

    clip = site.clips_dir / CLIP.name
    if not clip.is_file():
        site.clips_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CLIP, clip)

    # A short H.264 cut for the Segment tab's example (browser-playable, a few seconds).
    cut_clip(clip, site.clips_dir / rules.EXAMPLE_DEMO_CLIP, rules.EXAMPLE_CLIP_FRAMES)

    if not site.plates():
        print("estimating plates from the clip ...", file=sys.stderr)
        save_plates(estimate_plates(clip, count=1, progress=True), site.plates_dir, prefix=PLATE_PREFIX)

    silhouettes = site.silhouettes_dir / SILHOUETTES
    if not (silhouettes / "silhouettes.json").is_file():
        print("harvesting silhouettes of people walking through the site ...", file=sys.stderr)
        with open_frames(clip) as reader:
            plate = rules.plate_for(site, reader.size)
        extract_silhouettes(clip, "plate", silhouettes, step=6, plate=plate, progress=True)

    dataset = site.datasets_dir / DATASET_NAME
    if not (dataset / "manifest.json").is_file():
        print(f"compositing {DATASET_COUNT} training images ...", file=sys.stderr)
        rules.build_site_dataset(
            site, DATASET_NAME, [SILHOUETTES], DATASET_COUNT, DATASET_SIZE, seed=0, perspective="auto", progress=True
        )

    run = site.runs_dir / "demo"
    committed = DEMO_DIR / "best.pt"
    if train:
        _train_demo(dataset, run, minutes)
    elif committed.is_file() and not (run / "best.pt").is_file():
        run.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(committed, run / "best.pt")
    print(f"example site ready: {site.root}", file=sys.stderr)
    return 0


def _train_demo(dataset: Path, run: Path, minutes: float) -> None:
    """Train the demo model with the project's trainer, then store a slim copy (weights + config + plate) in
    examples/vtest_demo/ with the dataset's manifest, so it can be committed."""
    from humanseg.checkpoint import slim_checkpoint
    from humanseg.progress import bar
    from humanseg.train import TrainConfig, train

    config = TrainConfig(model=DEMO_MODEL, minutes=minutes, seed=0)
    with bar(desc="training", unit="step") as shown:
        for event in train(config, dataset, run):
            if event.kind == "step":
                shown.total = event.total_steps
                shown.update(event.step - shown.n)
                shown.set_postfix(loss=f"{event.loss:.3f}", img_s=f"{event.images_per_s or 0:.0f}", refresh=False)
            elif event.kind in ("val", "done"):
                shown.write(event.describe(), file=sys.stderr)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    slim_checkpoint(run / "best.pt", DEMO_DIR / "best.pt")
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest.pop("samples", None)  # the per-sample list is long and derivable; keep sources, params, id, counts
    (DEMO_DIR / "dataset_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.build_site", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="workspace folder (default: $HUMANSEG_WORKSPACE or ./workspace)")
    parser.add_argument("--train", action="store_true", help="retrain the demo model (and refresh examples/vtest_demo)")
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget for --train (default 15)")
    parser.add_argument("--if-missing", action="store_true", help="exit 0 with a message when the clip is missing")
    args = parser.parse_args(argv)
    return build(args.workspace, train=args.train, minutes=args.minutes, if_missing=args.if_missing)


if __name__ == "__main__":
    raise SystemExit(main())
