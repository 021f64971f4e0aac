"""Scoring a model while it trains: on the composite val split of its dataset, and on real labelled sequences.

Both return plain ``{metric: value}`` dicts that the trainer records in ``history.json`` and its ``val`` events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from humanseg.metrics import Confusion, scores
from humanseg.models import SegModel, compose_input
from humanseg.trainset import TrainSet, augment_batch


def validate_composites(
    model: SegModel,
    data: TrainSet,
    val_idx: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device,
    channels_last: bool,
    batch_size: int,
) -> dict[str, float]:
    """Loss, IoU, F-measure, precision and recall of ``model`` on the samples ``val_idx`` of ``data`` (no
    augmentation), as ``composite_loss``, ``composite_iou``, ``composite_f``, ``composite_precision`` and
    ``composite_recall``. The model is left in the mode it was in."""
    was_training = model.training
    model.eval()
    total_loss, counts = 0.0, Confusion()
    try:
        with torch.inference_mode():
            for i in range(0, len(val_idx), batch_size):
                idx = val_idx[i : i + batch_size].to(data.images.device)
                plates = data.plates[data.plate_index[idx]].to(device) if model.config.needs_plate else None
                frames, target, plate = augment_batch(
                    data.images[idx].to(device), data.masks[idx].to(device), plates, "none", torch.Generator(device)
                )
                x = compose_input(frames, plate, model.config.inputs)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                logits = model(x).float()
                total_loss += float(loss_fn(logits, target)) * len(idx)
                pred = logits.argmax(1).bool()
                truth = target.bool()
                tp = int((pred & truth).sum())
                fp = int((pred & ~truth).sum())
                fn = int((~pred & truth).sum())
                counts = counts + Confusion(tp, fp, fn, int(truth.numel()) - tp - fp - fn)
    finally:
        model.train(was_training)
    s = scores(counts)
    return {
        "composite_loss": total_loss / len(val_idx),
        "composite_iou": s["iou"],
        "composite_f": s["f_measure"],
        "composite_precision": s["precision"],
        "composite_recall": s["recall"],
    }


def validate_sequences(
    model: SegModel, sequences: Sequence[Path], plate: np.ndarray | None, working_scale: float | None = None
) -> dict[str, float]:
    """``f/<sequence>``: the F-measure of ``model`` on each labelled sequence (CDnet/SBI/DAVIS layout), scored
    by the evaluator users run; ``real_f``: their mean. Plate models use each sequence's own empty-scene image
    as the plate when it has one, else ``plate`` (the training plate). ``working_scale``: the dataset's (the
    segmenter then runs as the saved checkpoint will, see :mod:`humanseg.scale`)."""
    # Imported here: `import humanseg.train` need not load the evaluator and the segmenter backends.
    from humanseg.evaluate import evaluate_sequence
    from humanseg.segmenters.segnet import SegNetSegmenter
    from humanseg.video import load_sequence, read_image

    out: dict[str, float] = {}
    for seq_dir in sequences:
        seq_plate = None
        if model.config.needs_plate:
            # The sequence's own empty-scene image is the best plate for its camera; else the training plate.
            empties = load_sequence(seq_dir).empty_backgrounds
            seq_plate = read_image(empties[0]) if empties else plate
        seg = SegNetSegmenter.from_model(model, plate=seq_plate, working_scale=working_scale)
        result = evaluate_sequence(seq_dir, seg)
        out[f"f/{result['sequence']}"] = float(result["f_measure"])
    out["real_f"] = float(np.mean([v for k, v in out.items() if k.startswith("f/")]))
    return out
