"""Running a trained run's fold models on other inputs than they were tested on: the onset and
apex sensitivity's shifted frames (the chapter's tables and sentences are tsfmicro.sensitivity's).

:func:`shift_predictions`: the fold models of a trained run (its first seed, whose final weights
the engine keeps; protocol ``fixed``, the last epoch) tested on their own held-out clips with the
apex, or separately the onset, moved by a percentage of the clip (tsfmicro.data.moved_frames: the
rounding and clamping rules). Each fold's clips are evaluated in the batches training evaluated
them in, so a shift of 0 reproduces the run's own predictions exactly (on the device type it was
trained on).

The predictions are kept in the run folder (``evaluations/shifts_<key>.csv``, with the clips left
out in ``shifts_<key>_excluded.csv``), so a notebook opened again only reads them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tsfmicro import _io
from tsfmicro.data.moved_frames import SHIFT_KINDS
from tsfmicro.results import Run, first_seed_predictions

EVALUATIONS = "evaluations"
EVALUATION_VERSION = 1  # bump when the evaluation changes, so kept predictions are not reused
EXCLUDED_COLUMNS = ["kind", "dataset", "subject", "clip_id", "reason"]


@dataclass
class ShiftEvaluation:
    """``predictions``: one row per (kind, percent, clip): kind, percent, seed, fold, subject,
    clip_id, sample_index, true, pred, steps, frame, moved, prob_<class>. ``excluded``: the clips
    left out of every shift of a kind (a shifted frame missing or unreadable), with the reason."""

    predictions: pd.DataFrame
    excluded: pd.DataFrame
    path: Path | None = None


def shift_predictions(run: Run, data, device: str | None = None) -> ShiftEvaluation:
    """Predictions of ``run``'s fold models (first seed, protocol fixed) on the shifted inputs of
    ``data`` (``prepare(..., shifts=...)`` of the run's dataset and task), read from the run
    folder when they were computed before. ``device``: default the run's device type when this
    machine has it, else the CPU."""
    import torch

    if data.shifted is None:
        raise ValueError("the prepared data holds no shifted frames: prepare(..., shifts=[...])")
    _check_alignment(run, first_seed_predictions(run), data)
    device = torch.device(device or _run_device(run))
    key = _hash({"version": EVALUATION_VERSION, "run": run.config.get("key"), "frames": data.shifted.cache_key,
                 "percents": list(data.shifted.percents), "data": data.cache_key, "task": data.task,
                 "clips": list(data.samples["clip_id"].astype(str)), "device": device.type})
    folder = Path(run.path) / EVALUATIONS
    stored, excluded_file = folder / f"shifts_{key}.csv", folder / f"shifts_{key}_excluded.csv"
    if stored.is_file() and excluded_file.is_file():
        return ShiftEvaluation(pd.read_csv(stored, dtype={"fold": str, "subject": str, "clip_id": str}),
                               pd.read_csv(excluded_file, dtype={"subject": str, "clip_id": str}), stored)
    predictions, excluded = _evaluate_shifts(run, data, device)
    _io.write_csv(excluded_file, excluded)
    _io.write_csv(stored, predictions)  # last: its presence marks the evaluation done
    return ShiftEvaluation(predictions, excluded, stored)


def _run_device(run: Run) -> str:
    import torch

    wanted = run.config.get("resolved", {}).get("device_type", "cpu")
    if wanted == "cuda" and torch.cuda.is_available():
        return "cuda"
    if wanted == "mps" and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _evaluate_shifts(run: Run, data, device) -> tuple[pd.DataFrame, pd.DataFrame]:
    import torch

    from tsfmicro.engine import loso
    from tsfmicro.engine.recipes import Recipe

    table = first_seed_predictions(run)
    shifted = data.shifted
    resolved = run.config["resolved"]
    recipe, image_size = Recipe(**resolved["recipe"]), int(resolved["image_size"])
    usable = {kind: shifted.usable(kind) for kind in SHIFT_KINDS}
    excluded = [dict(kind=kind, dataset=data.samples.loc[sample, "dataset"], subject=data.samples.loc[sample, "subject"],
                     clip_id=data.samples.loc[sample, "clip_id"], reason=reason)
                for kind in SHIFT_KINDS
                for sample, reason in _first_reasons(shifted.table, kind, usable[kind], table["sample_index"])]
    for kind in SHIFT_KINDS:
        if not usable[kind][table["sample_index"].to_numpy(dtype=int)].any():
            raise ValueError(f"{data.dataset} {data.task}: no clip of run {run.path} has an input at every {kind} "
                             f"shift ({', '.join(f'{p:+g} %' for p in shifted.percents)}): e.g. "
                             f"{excluded[0]['reason'] if excluded else 'no frame'}")
    names = run.class_names
    parts = []
    for fold, rows in table.groupby("fold", sort=False):  # test clips in the order training evaluated them
        model = run.fold_model(rows["subject"].iloc[0]).to(device)
        index = rows["sample_index"].to_numpy(dtype=int)
        computed = {}  # (onset frames, apex frames) of the fold's clips -> probabilities: equal inputs, once
        for kind in SHIFT_KINDS:
            keep = usable[kind][index]
            for percent in shifted.percents:
                where = shifted.rows(kind, percent).set_index("sample").loc[index]
                frames = tuple(where["frame"].where(where["reason"] == "", -1))
                annotated = tuple(data.samples[("apex" if kind == "onset" else "onset") + "_frame"].to_numpy()[index])
                inputs = (frames, annotated) if kind == "onset" else (annotated, frames)
                if inputs not in computed:
                    onset, apex = shifted.inputs(kind, percent, data.onset, data.apex, rows=index)
                    subset = replace(data, samples=data.samples.iloc[index].reset_index(drop=True), onset=onset,
                                     apex=apex, train_onset=None, train_apex=None, shifted=None)
                    trainer = loso.FoldTrainer(data=loso.DeviceData(subset, device), build_model=None, recipe=recipe,
                                               image_size=image_size, seed=0)
                    computed[inputs] = trainer.predict(model, torch.arange(len(index)))[0].numpy()
                probabilities = computed[inputs]
                frame = pd.DataFrame({
                    "kind": kind, "percent": percent, "seed": rows["seed"].to_numpy(), "fold": str(fold),
                    "subject": rows["subject"].to_numpy(), "clip_id": rows["clip_id"].to_numpy(),
                    "sample_index": index, "true": rows["true"].to_numpy(), "pred": probabilities.argmax(axis=1),
                    "steps": where["steps"].to_numpy(), "frame": where["frame"].to_numpy(),
                    "moved": where["moved"].to_numpy(),
                })
                for k, name in enumerate(names):
                    frame[f"prob_{name}"] = probabilities[:, k]
                parts.append(frame[keep])
    predictions = pd.concat(parts, ignore_index=True)
    order = {kind: position for position, kind in enumerate(SHIFT_KINDS)}
    predictions = predictions.sort_values(["kind", "percent"], key=lambda c: c.map(order) if c.name == "kind" else c,
                                          kind="stable").reset_index(drop=True)
    return predictions, pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)


def _first_reasons(table: pd.DataFrame, kind: str, usable: np.ndarray, samples: pd.Series):
    """(sample, reason) of each clip of the run left out of the ``kind`` shifts."""
    part = table[(table["kind"] == kind) & (table["reason"] != "")]
    wanted = set(samples.astype(int))
    for sample, rows in part.groupby("sample", sort=True):
        if int(sample) in wanted and not usable[int(sample)]:
            yield int(sample), "; ".join(rows["reason"])


def _check_alignment(run: Run, table: pd.DataFrame, data) -> None:
    index = table["sample_index"].to_numpy(dtype=int)
    if index.max(initial=-1) >= len(data.samples):
        raise ValueError(f"the prepared data ({len(data.samples)} clips) does not match run {run.path}")
    rows = data.samples.iloc[index]
    mismatched = (rows["clip_id"].astype(str).to_numpy() != table["clip_id"].astype(str).to_numpy()) | \
                 (rows["subject"].astype(str).to_numpy() != table["subject"].astype(str).to_numpy())
    if mismatched.any():
        first = table[mismatched].iloc[0]
        raise ValueError(f"the prepared data does not match run {run.path}: its clip {first['subject']} "
                         f"{first['clip_id']} is another clip there; prepare the run's dataset and task with "
                         "the run's crop size, errata choice and annotated apex")



def _hash(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:12]



# ----------------------------------------------------------------------------- frozen features
FEATURE_BATCH = 64  # clips per forward pass; features do not depend on it (eval mode: no batch statistics)


@dataclass
class BranchFeatures:
    """Frozen features of a run's fold models (first seed): ``clips`` one row per (fold model,
    clip of one of its TRAINING subjects): fold, held_out (the fold's test subject), subject,
    clip_id, sample_index, true; ``features``: {"temporal", "spatial", "fused"} -> ``(rows, C)``,
    each map mean-pooled over its tokens ("fused": the tokens the head reads). A branch the
    network does not have is absent."""

    clips: pd.DataFrame
    features: dict


def branch_features(run: Run, data, device: str | None = None) -> BranchFeatures:
    """Each fold model of ``run`` (first seed, final weights) on the clips of its own training
    subjects (``data``: the run's prepared data, ``sample_index`` of its predictions indexes it),
    its branch outputs and fused tokens pooled: what tsfmicro.probes reads. Not kept on disk:
    one forward pass per clip and fold model."""
    import torch

    from tsfmicro.engine.augment import to_model_input

    table = first_seed_predictions(run)
    _check_alignment(run, table, data)
    device = torch.device(device or _run_device(run))
    labels = table.drop_duplicates("sample_index").set_index("sample_index")
    parts, features = [], {}
    for fold, rows in table.groupby("fold", sort=False):
        held_out = str(rows["subject"].iloc[0])
        model = run.fold_model(held_out).to(device)
        index = labels.index[labels["subject"].astype(str) != held_out].to_numpy(dtype=int)
        captured: dict[str, list] = {}

        def keep(name):
            def hook(module, inputs, output):
                captured.setdefault(name, []).append(output.detach().float().mean(dim=(2, 3)).cpu())
            return hook

        def keep_tokens(module, inputs):
            captured.setdefault("fused", []).append(inputs[0].detach().float().mean(dim=1).cpu())

        handles = [layer.register_forward_hook(keep(name)) for name, layer in model.feature_layers().items()
                   if name in ("temporal", "spatial")]
        handles.append(model.head.register_forward_pre_hook(keep_tokens))
        try:
            with torch.no_grad():
                for batch in np.array_split(index, max(1, -(-len(index) // FEATURE_BATCH))):
                    inputs = [to_model_input(torch.from_numpy(getattr(data, name)[batch].copy()), model.image_size)
                              .to(device) for name in model.inputs]
                    model(*inputs)
        finally:
            for handle in handles:
                handle.remove()
        for name, chunks in captured.items():
            features.setdefault(name, []).append(torch.cat(chunks).numpy())
        parts.append(pd.DataFrame({"fold": str(fold), "held_out": held_out,
                                   "subject": labels.loc[index, "subject"].astype(str).to_numpy(),
                                   "clip_id": labels.loc[index, "clip_id"].astype(str).to_numpy(),
                                   "sample_index": index, "true": labels.loc[index, "true"].to_numpy()}))
    return BranchFeatures(pd.concat(parts, ignore_index=True),
                          {name: np.concatenate(chunks) for name, chunks in features.items()})


# ----------------------------------------------------------------------------- intervals of other videos
ENSEMBLE = "ensemble"  # the ``fold`` of a row whose probabilities are the mean of every fold model's
INTERVAL_BATCH = 32  # intervals per forward pass (eval mode: the probabilities do not depend on it)


def run_subjects(run: Run) -> list[str]:
    """The held-out subjects of the run's folds (first seed), in fold order: the fold models."""
    table = first_seed_predictions(run)
    return list(dict.fromkeys(table.drop_duplicates("fold")["subject"].astype(str)))


def interval_probabilities(run: Run, frames_by_interval, folds=None, device: str | None = None,
                           boxes=None, apex_boxes=None) -> pd.DataFrame:
    """Class probabilities of ``run``'s fold models (first seed, final weights = protocol fixed) for
    each interval of another video, from its onset and apex frames cut as the run's face-crop cache
    cuts a clip: the MTCNN box of the onset (largest face, the cache's margin, made square; the
    largest centred square when no face is found), the same box for the apex, resized to the run's
    crop size, then the engine's input transform (tsfmicro.engine.augment.to_model_input).

    ``frames_by_interval``: one (onset, apex) pair per interval, each a frame path or a uint8 RGB
    array ``(H, W, 3)`` (the two of a pair of one size). ``folds``: None: every fold model, their
    probabilities averaged (the ensemble a new person's video needs; ``fold`` = "ensemble"); a
    subject: that subject's fold model (the model that never saw them) for every interval; a
    sequence, one subject per interval: each interval's own held-out model (LOSO on the run's own
    subjects). ``boxes``: None, or one raw-frame box (x0, y0, x1, y1) per interval (None entries:
    detected), e.g. the cache's ``crop_x0..crop_y1`` of a clip. ``apex_boxes``: None (the cache's
    rule: the apex is cut with the onset's box), or one box per interval for the apex (None entries:
    the onset's), e.g. the onset's box moved with the head. ``device``: default the run's device type
    when this machine has it, else the CPU.

    Returns one row per interval, in order: fold, crop_method (mtcnn, given, centre), crop_x0..crop_y1,
    pred (class index), pred_label, prob_<class> for each of ``run.class_names``.
    """
    import torch

    from tsfmicro.data.cache import CROP_BOX_COLUMNS
    from tsfmicro.data.faces import (CROP_CENTRE, CROP_MTCNN, DEFAULT_MARGIN, FaceDetector, centre_box, crop,
                                     square_box)
    from tsfmicro.data.frames import read_frame

    pairs = [tuple(pair) for pair in frames_by_interval]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError("frames_by_interval: give one (onset, apex) pair per interval")
    names = run.class_names
    columns = ["fold", "crop_method", *CROP_BOX_COLUMNS, "pred", "pred_label", *(f"prob_{n}" for n in names)]
    if not pairs:
        return pd.DataFrame(columns=columns)
    subjects = run_subjects(run)
    if folds is None:
        chosen = [None] * len(pairs)
    elif isinstance(folds, (str, int, np.integer)):
        chosen = [str(folds)] * len(pairs)
    else:
        chosen = [None if f is None else str(f) for f in folds]
        if len(chosen) != len(pairs):
            raise ValueError(f"folds: {len(chosen)} subjects for {len(pairs)} intervals; give one per interval")
    unknown = sorted({f for f in chosen if f is not None and f not in subjects})
    if unknown:
        raise KeyError(f"subject(s) {', '.join(unknown)} are not held out by a fold of run {run.path} "
                       f"(its folds: {', '.join(subjects)})")
    given = list(boxes) if boxes is not None else [None] * len(pairs)
    if len(given) != len(pairs):
        raise ValueError(f"boxes: {len(given)} boxes for {len(pairs)} intervals; give one per interval")

    resolved = run.config["resolved"]
    crop_size, image_size = int(resolved["crop_size"]), int(resolved["image_size"])
    read = lambda frame: read_frame(frame) if isinstance(frame, (str, Path)) else np.asarray(frame)  # noqa: E731
    frames = [(read(onset), read(apex)) for onset, apex in pairs]
    for k, (onset, apex) in enumerate(frames):
        if onset.shape != apex.shape or onset.ndim != 3 or onset.shape[2] != 3 or onset.dtype != np.uint8:
            raise ValueError(f"interval {k}: onset {onset.shape} {onset.dtype} and apex {apex.shape} {apex.dtype}: "
                             "both must be uint8 RGB frames (H, W, 3) of one size")
    wanted = [k for k, box in enumerate(given) if box is None]
    found = FaceDetector().largest_faces([frames[k][0] for k in wanted]) if wanted else []
    cut, methods = list(given), ["given"] * len(pairs)
    for k, box in zip(wanted, found):
        cut[k], methods[k] = ((square_box(box, DEFAULT_MARGIN), CROP_MTCNN) if box is not None
                              else (centre_box(frames[k][0].shape), CROP_CENTRE))
    cut = [tuple(float(v) for v in box) for box in cut]
    apex_given = [None] * len(pairs) if apex_boxes is None else list(apex_boxes)
    if len(apex_given) != len(pairs):
        raise ValueError(f"apex_boxes: {len(apex_given)} boxes for {len(pairs)} intervals; give one per interval")
    apex_cut = [box if other is None else tuple(float(v) for v in other) for box, other in zip(cut, apex_given)]
    onsets = np.stack([crop(onset, box, crop_size) for (onset, _), box in zip(frames, cut)])
    apexes = np.stack([crop(apex, box, crop_size) for (_, apex), box in zip(frames, apex_cut)])

    device = torch.device(device or _run_device(run))
    probabilities = np.zeros((len(pairs), len(names)), dtype=np.float64)
    for subject in subjects:
        rows = np.array([k for k, f in enumerate(chosen) if f is None or f == subject], dtype=int)
        if rows.size == 0:
            continue
        model = run.fold_model(subject).to(device)
        if any(name not in ("onset", "apex") for name in model.inputs):
            raise ValueError(f"run {run.path}: its network reads {', '.join(model.inputs)}; intervals give the "
                             "onset and apex face crops only")
        share = np.array([1.0 / len(subjects) if chosen[k] is None else 1.0 for k in rows])
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                             enabled=resolved.get("recipe", {}).get("precision") == "bf16"):
            for batch in np.array_split(rows, max(1, -(-len(rows) // INTERVAL_BATCH))):
                crops = {"onset": onsets[batch], "apex": apexes[batch]}
                inputs = [_model_input(crops[name], image_size, device) for name in model.inputs]
                out = model(*inputs).float().softmax(dim=1).cpu().numpy()
                probabilities[batch] += out * share[np.searchsorted(rows, batch), None]
    table = pd.DataFrame({"fold": [f if f is not None else ENSEMBLE for f in chosen], "crop_method": methods})
    for column, values in zip(CROP_BOX_COLUMNS, np.array(cut).T):
        table[column] = values
    table["pred"] = probabilities.argmax(axis=1)
    table["pred_label"] = [names[k] for k in table["pred"]]
    for k, name in enumerate(names):
        table[f"prob_{name}"] = probabilities[:, k]
    return table[columns]


def _model_input(crops: np.ndarray, image_size: int, device):
    """uint8 crops ``(B, H, W, 3)`` -> the network's input on ``device`` (the engine's transform)."""
    import torch

    from tsfmicro.engine.augment import to_model_input

    return to_model_input(torch.from_numpy(np.ascontiguousarray(crops)).to(device), image_size)
