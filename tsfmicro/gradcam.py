"""Grad-CAM of TSFmicro's two branches, with the `grad-cam` package (pytorch_grad_cam).

The network takes two inputs, ``model(onset, apex)``, while pytorch_grad_cam calls
``model(input_tensor)`` with one tensor. :class:`PairInput` bridges the two: it takes
``(B, 6, S, S)`` (onset and apex stacked on the channel dimension) and calls the network.
(Stacking on a new dimension would give a 5-D tensor, which the package treats as a 3-D
volume.) The target layers are ``model.feature_layers()["temporal"]`` and ``["spatial"]``, whose
outputs are channels-first maps ``(B, C, h, w)``, so no reshape is needed; the package
upsamples each CAM to ``S x S`` (the last two sizes of the input tensor).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

BRANCHES = ("temporal", "spatial")
# A finer map of the temporal branch than its output (S/16 x S/16: 4 x 4 cells of 16 pixels in the
# tiny preset, after stages of 2-D retention that mix every position): the output of its first
# stage (S/4 x S/4, after one retention block and the downsampling conv). Only for TSFmicro-shaped
# networks (``model.temporal.stages``); a network without one maps it to None.
TEMPORAL_STAGE1 = "temporal_stage1"


def _target_layer(model: nn.Module, branch: str) -> nn.Module | None:
    """The module whose output Grad-CAM weighs for ``branch``: ``model.feature_layers()``'s, or the
    temporal branch's first stage for :data:`TEMPORAL_STAGE1`."""
    if branch == TEMPORAL_STAGE1:
        stages = getattr(getattr(model, "temporal", None), "stages", None)
        return None if stages is None else stages[0].downsample.conv
    return model.feature_layers().get(branch)


class PairInput(nn.Module):
    """``forward(pair)`` with ``pair = cat([onset, apex], dim=1)`` -> ``model(onset, apex)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.model(pair[:, :3], pair[:, 3:])


def stack_pair(onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) onset and apex -> (B, 6, S, S), the input :class:`PairInput` takes."""
    return torch.cat([onset, apex], dim=1)


def branch_cams(model: nn.Module, onset: torch.Tensor, apex: torch.Tensor,
                target_classes: Sequence[int] | None = None,
                branches: Sequence[str] = BRANCHES) -> dict[str, np.ndarray | None]:
    """Grad-CAM maps of each branch for a batch.

    onset, apex: ``(B, 3, S, S)`` model inputs (``tsfmicro.engine.augment.to_model_input``).
    ``target_classes``: the class each CAM explains (default: the predicted class).
    ``branches``: names of ``model.feature_layers()``, or :data:`TEMPORAL_STAGE1`.
    Returns ``{branch: (B, S, S) float array in [0, 1]}``; a branch the variant does not
    have (e.g. ``temporal_only`` has no spatial branch) maps to None.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model.eval()
    wrapped = PairInput(model).eval()
    pair = stack_pair(onset, apex)
    targets = None if target_classes is None else [ClassifierOutputTarget(int(c)) for c in target_classes]
    cams: dict[str, np.ndarray | None] = {}
    for branch in branches:
        layer = _target_layer(model, branch)
        if layer is None:
            cams[branch] = None
            continue
        with GradCAM(model=wrapped, target_layers=[layer]) as cam:
            cams[branch] = np.asarray(cam(input_tensor=pair, targets=targets), dtype=np.float32)
    return cams


def difference_image(onset: np.ndarray, apex: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """A viewable difference frame for uint8 crops (H, W, 3): 128 + gain * (apex - onset)."""
    difference = apex.astype(np.float32) - onset.astype(np.float32)
    return np.clip(128 + gain * difference, 0, 255).astype(np.uint8)


def pick_examples(predictions, class_names: Sequence[str], per_class: int = 1,
                  true_column: str = "true", pred_column: str = "pred") -> list[dict]:
    """Test predictions to explain: for each class, up to ``per_class`` correct and
    ``per_class`` wrong ones. With a ``subject`` column, each pick prefers the subjects shown
    least so far (the table is in fold order: first-in-order alone drew most rows from one
    subject); ties go to table order, so the choice is reproducible.

    ``predictions`` is one seed's table (one row per test clip). Returns dicts with
    ``index`` (row label), ``true``, ``pred``, ``outcome`` ("correct" / "wrong").
    """
    chosen = []
    shown: dict = {}  # subject -> rows chosen so far
    subjects = predictions["subject"] if "subject" in predictions else None
    for class_index, _ in enumerate(class_names):
        rows = predictions[predictions[true_column] == class_index]
        for outcome, mask in (("correct", rows[pred_column] == rows[true_column]),
                              ("wrong", rows[pred_column] != rows[true_column])):
            candidates = list(rows[mask].index)
            for _ in range(per_class):
                if not candidates:
                    break
                index = (candidates[0] if subjects is None else
                         min(candidates, key=lambda i: (shown.get(subjects[i], 0), candidates.index(i))))
                candidates.remove(index)
                if subjects is not None:
                    shown[subjects[index]] = shown.get(subjects[index], 0) + 1
                row = predictions.loc[index]
                chosen.append({"index": index, "true": int(row[true_column]),
                               "pred": int(row[pred_column]), "outcome": outcome})
    return chosen


def explain_predictions(run, prepared, per_class: int = 1, protocol: str = "fixed",
                        attention: bool = False) -> list[dict]:
    """Grad-CAM panels for test predictions of ``run`` (an engine Run), ready for
    :func:`tsfmicro.plots.gradcam_grid`.

    Uses the run's first seed (whose fold weights the engine keeps): for each class up to
    ``per_class`` correct and wrong test clips; each is explained by the model of its own
    LOSO fold (trained without that subject), for the class that model predicted.
    ``prepared`` is the run's PreparedData (``sample_index`` in the predictions indexes it).
    ``attention``: also, per branch, the attention of the query token at that branch's
    Grad-CAM peak (tsfmicro.attention_maps; one more forward pass per clip), for
    :func:`tsfmicro.plots.attention_grid`.
    """
    from tsfmicro.engine.augment import to_model_input

    seed = int(run.predictions["seed"].iloc[0])
    table = run.predictions[run.predictions["seed"] == seed].reset_index(drop=True)
    examples = pick_examples(table, run.class_names, per_class, "true", f"pred_{protocol}")
    panels = []
    for example in examples:
        row = table.loc[example["index"]]
        model = run.fold_model(row["subject"])
        size = model.config.image_size
        position = int(row["sample_index"])  # the clip's row in PreparedData
        onset_crop = prepared.onset[position]
        apex_crop = prepared.apex[position]
        onset = to_model_input(torch.from_numpy(onset_crop[None].copy()), size)
        apex = to_model_input(torch.from_numpy(apex_crop[None].copy()), size)
        cams = branch_cams(model, onset, apex, target_classes=[example["pred"]])
        shown = _resize_crop(onset_crop, size), _resize_crop(apex_crop, size)
        names = run.class_names
        panel = {
            "title": (f"{example['outcome']}: true {names[example['true']]}, "
                      f"predicted {names[example['pred']]}\nsubject {row['subject']} {row['clip_id']}"),
            "onset": shown[0],
            "difference": difference_image(*shown),
            "temporal": None if cams["temporal"] is None else cams["temporal"][0],
            "spatial": None if cams["spatial"] is None else cams["spatial"][0],
            **example,
        }
        if attention:
            panel.update(_attention_at_peaks(model, onset, apex, panel))
        panels.append(panel)
    return panels


def test_maps(run, prepared, protocol: str = "fixed", branches: Sequence[str] = BRANCHES,
              batch: int = 64) -> tuple[pd.DataFrame, dict[str, np.ndarray | None]]:
    """Grad-CAM of every test clip of the run's first seed, each by the model of its own LOSO
    fold, for the class that model predicted (as :func:`explain_predictions`), in batches.

    Returns the clips (the first seed's prediction rows, in their order: ``subject``, ``clip_id``,
    ``sample_index``, ``true``, ``pred``) and ``{branch: (N, S, S) maps or None}`` (None: the variant
    has no such branch).
    """
    from tsfmicro.engine.augment import to_model_input

    seed = int(run.predictions["seed"].iloc[0])
    table = run.predictions[run.predictions["seed"] == seed].reset_index(drop=True)
    clips = pd.DataFrame({"subject": table["subject"].astype(str), "clip_id": table["clip_id"],
                          "sample_index": table["sample_index"].astype(int), "true": table["true"].astype(int),
                          "pred": table[f"pred_{protocol}"].astype(int)})
    maps: dict[str, np.ndarray | None] = {}
    for subject in clips["subject"].unique():  # one fold model per subject
        rows = np.flatnonzero(clips["subject"].to_numpy() == subject)
        model = run.fold_model(subject)
        size = model.config.image_size
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            positions = clips["sample_index"].to_numpy()[part]
            onset = to_model_input(torch.from_numpy(prepared.onset[positions].copy()), size)
            apex = to_model_input(torch.from_numpy(prepared.apex[positions].copy()), size)
            cams = branch_cams(model, onset, apex, target_classes=clips["pred"].to_numpy()[part], branches=branches)
            for branch, found in cams.items():
                if found is None:
                    maps.setdefault(branch, None)
                    continue
                if maps.get(branch) is None:
                    maps[branch] = np.zeros((len(clips), size, size), dtype=np.float32)
                maps[branch][part] = found
    return clips, maps


def _attention_at_peaks(model: nn.Module, onset: torch.Tensor, apex: torch.Tensor, panel: dict) -> dict:
    """Per branch: the grid cell of its Grad-CAM peak and that query token's attention map."""
    from tsfmicro.attention_maps import attention_maps, cam_peak, grid_cell

    size, grid = model.config.image_size, model.config.grid_size
    queries = {branch: grid_cell(cam_peak(panel[branch]), size, grid) if panel[branch] is not None else None
               for branch in BRANCHES}
    # one forward pass: the clip twice, row b asking for branch b's query
    maps = attention_maps(model, onset.repeat(2, 1, 1, 1), apex.repeat(2, 1, 1, 1),
                          [queries[branch] or (0, 0) for branch in BRANCHES])
    found = {"grid": grid}
    for row, branch in enumerate(BRANCHES):
        found[f"{branch}_query"] = queries[branch]
        found[f"{branch}_attention"] = maps[branch][row] if branch in maps and queries[branch] else None
    return found


def _resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """A uint8 crop resized to the model's input size, so the CAM lies on what the model saw."""
    if crop.shape[0] == size and crop.shape[1] == size:
        return crop
    from PIL import Image

    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))
