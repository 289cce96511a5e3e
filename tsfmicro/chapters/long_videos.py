"""Chapter 13, From a long recording: spot, then recognise (the MEGC spot-then-recognise task).

Per long-video dataset of ``long_videos: datasets`` (CAS(ME)^2, SAMM-LV, CAS(ME)^3 Part A): the
training-free "MDMD-like" spotter (tsfmicro.spotting) on every video, scored with the MEGC2020
spotting F1 (ours, and the public scorer's where it differs), beside the published MDMD numbers
(their protocol); then each spotted interval recognised by a trained clip run of the SAME people
(tsfmicro.engine.recognise: each subject by the fold model that never saw them), the STR score
(STRS, ours and the public scorer's), and the ground-truth intervals recognised alike (perfect
spotting), so spotting errors and recognition errors are told apart. The recognisers are the main
results' T-S late runs (``long_videos: recognisers``, dataset/task of ``datasets:``): shared, never
retrained. CAS(ME)^2 has no clip dataset of the same people: spotting only (recognising it would
need a LOSO run on its own intervals, not done here).

Synthetic data: the long videos are written by tsfmicro.data.long_videos with the clip dataset's
subjects' faces (SAMM-LV subject s is the synthetic SAMM's subject s), planted micro and macro
intervals of known emotion, and blinks as distractors; the planted intervals are the answer.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tsfmicro import _io
from tsfmicro.chapters import Chapter, Page, Truth, above_recovered, register
from tsfmicro.sections import PlannedRun, is_int, main_datasets, names, setting

NOT_CONFIGURED = "These parameters do not configure this chapter (no long_videos: section), so it shows nothing."
SPOTTING_VERSION = 1  # bump when the spotter changes, so kept spotting results are not reused
RESAMPLES = 1000  # video bootstrap draws
EXAMPLE_SCALES = ("micro", "macro")


def _long_video_names() -> tuple[str, ...]:
    from tsfmicro.data.datasets import LONG_VIDEO_SPECS

    return tuple(spec.name for spec in LONG_VIDEO_SPECS)


def _spec(name: str):
    from tsfmicro.data.long_videos import long_video_spec

    return long_video_spec(name)


def _recognisers(value, key, params) -> list[str]:
    """dataset/task entries of ``datasets:`` (their main-results run recognises), each the clip
    dataset of the same people as a listed long-video dataset, at most one per dataset."""
    if not isinstance(value, list):
        return [f"{key}: {value!r} must be a list of dataset/task, e.g. [samm/5class], or []"]
    datasets = main_datasets(params)
    section = params.get("long_videos") or {}
    listed = section.get("datasets") if isinstance(section.get("datasets"), list) else []
    people = {_spec(name).reader.same_people for name in listed if name in _long_video_names()}
    problems, seen = [], set()
    for entry in value:
        dataset, _, task = str(entry).partition("/")
        if not (isinstance(entry, str) and dataset and task):
            problems.append(f"{key}: {entry!r} is not dataset/task, e.g. samm/5class")
        elif not (isinstance(datasets.get(dataset), list) and task in datasets[dataset]):
            planned = ", ".join(f"{name}/{t}" for name, ts in datasets.items() if isinstance(ts, list) for t in ts)
            problems.append(f"{key}: {entry} is not in datasets: ({planned or 'none'}); the recogniser is its "
                            f"main-results run (not retrained): add it there, or leave it out")
        elif dataset not in people:
            problems.append(f"{key}: {dataset} is not the clip dataset of the same people as any of "
                            f"long_videos.datasets ({', '.join(sorted(p for p in people if p)) or 'none has one'})")
        elif dataset in seen:
            problems.append(f"{key}: {dataset} listed more than once (one recogniser per dataset)")
        seen.add(dataset)
    return problems


def _positive(value, key, params) -> list[str]:
    return [] if is_int(value) and value >= 1 else [f"{key}: {value!r} is not a whole number >= 1"]


@dataclass(frozen=True)
class Section:
    """``long_videos:`` (optional; null or left out: no such chapter). ``subjects``,
    ``videos_per_subject``, ``frames``: the size of the synthetic long videos (frames None: the
    dataset writer's default); not used with real data."""

    datasets: tuple[str, ...] = setting(names(_long_video_names))
    recognisers: tuple[str, ...] = setting(_recognisers, default=())
    subjects: int = setting(_positive, default=4)
    videos_per_subject: int = setting(_positive, default=1)
    frames: int | None = setting(_positive, default=None, null_ok=True)


def recognisers(params) -> dict[str, tuple[str, str]]:
    """long-video dataset -> (clip dataset, task) of its recogniser, for those that have one."""
    section = params.section("long_videos")
    if section is None:
        return {}
    chosen = dict(str(entry).split("/", 1) for entry in section.recognisers)
    return {name: (_spec(name).reader.same_people, chosen[_spec(name).reader.same_people])
            for name in section.datasets if _spec(name).reader.same_people in chosen}


def runs(params) -> dict:
    """(dataset, task) -> the main results' T-S late run of each recogniser (the same request:
    shared, not retrained; its first seed's fold weights recognise)."""
    return {(dataset, task): PlannedRun(dataset, task, "ts_late", tuple(params.seeds))
            for dataset, task in dict.fromkeys(recognisers(params).values())}


def long_video_root(params, name: str) -> Path | None:
    """The folder of long-video dataset ``name``: synthetic, written the first time (its size from
    the section); real, ``roots:`` or $TSFMICRO_<NAME>_ROOT (None when neither is given)."""
    from tsfmicro.data.long_videos import write_long_videos

    if params.synthetic:
        section = params.section("long_videos")
        seed = int((params.params.get("synthetic") or {}).get("seed", 0))
        frames = section.frames
        final = params.path("synthetic") / (f"{name}-{section.subjects}x{section.videos_per_subject}-"
                                            f"{frames or 'default'}f-seed{seed}")
        if not final.is_dir():
            write_long_videos(name, final, subjects=section.subjects, videos_per_subject=section.videos_per_subject,
                              seed=seed, frames=frames)
        return final
    folder = (params.params.get("roots") or {}).get(name) or os.environ.get(_spec(name).root_variable)
    return Path(os.path.expanduser(str(folder))) if folder else None


def plan_lines(params) -> list[str]:
    """What ``tsfmicro plan`` says of this chapter beside the training units: per long-video dataset
    the spotting step (training-free, on every video) and its recogniser (a planned run above), or
    the folder that is missing."""
    section = params.section("long_videos")
    if section is None:
        return []
    chosen = recognisers(params)
    lines = ["long videos (chapter 13; no training):"]
    for name in section.datasets:
        spec = _spec(name)
        if params.synthetic:
            where = "synthetic long videos, written when first needed"
        else:
            folder = (params.params.get("roots") or {}).get(name) or os.environ.get(spec.root_variable)
            if not folder:
                lines.append(f"  {spec.display_name}: folder not given (roots.{name} or {spec.root_variable}; "
                             f"{spec.layout}): left out")
                continue
            where = str(folder)
        step = f"  {spec.display_name}: spot every video of {where} (MDMD-like)"
        if name in chosen:
            dataset, task = chosen[name]
            step += f", then recognise with {dataset}/{task} ts_late (the main results' run above, first seed)"
        else:
            step += ", spotting only (no recogniser of the same people)"
        lines.append(step)
    return lines


def planted(root: Path) -> pd.DataFrame:
    """The manifest of a synthetic long-video root (one row per planted event; subject, video as text)."""
    from tsfmicro.data.synthetic import MANIFEST_FILE

    return pd.read_csv(root / MANIFEST_FILE, dtype={"subject": str, "video": str, "label": str}).fillna({"label": ""})


def _synthetic_subject(subject: str, layout: str) -> str:
    """The manifest's subject as the reader names it (SAMM-LV: zero-padded to 3 digits)."""
    return f"{int(subject):03d}" if layout == "samm_lv" and subject.isdigit() else subject


@dataclass
class Spotting:
    """One dataset's spotting: ``spotted`` (tsfmicro.spotting.PREDICTION_COLUMNS) and the example
    video's scores (frame, one column per scale) and thresholds."""

    spotted: pd.DataFrame
    example: tuple[str, str]
    scores: pd.DataFrame
    thresholds: dict


def spot(table, folder: Path, params=None) -> Spotting:
    """Every video of ``table`` spotted (tsfmicro.spotting), the first one's scores kept for the
    timeline; kept in ``folder`` (the parameters' prepared folder) by the videos' and the
    spotter's key, so a notebook opened again only reads them."""
    from tsfmicro.data.faces import FaceDetector
    from tsfmicro.spotting import PARAMETERS, PREDICTION_COLUMNS, spot_video

    params = params or PARAMETERS[table.dataset]
    videos = table.videos.sort_values(["subject", "video"]).reset_index(drop=True)
    key = hashlib.sha256(json.dumps({
        "version": SPOTTING_VERSION, "dataset": table.dataset, "params": repr(params),
        "videos": videos[["subject", "video", "folder", "first_frame", "last_frame", "frames"]].astype(str)
        .to_numpy().tolist()}, sort_keys=True).encode()).hexdigest()[:12]
    stem = folder / f"spotting_{table.dataset}_{key}"
    files = [Path(f"{stem}_{part}") for part in ("example.json", "scores.csv", "spotted.csv")]
    if all(file.is_file() for file in files):
        example = json.loads(files[0].read_text())
        return Spotting(pd.read_csv(files[2], dtype={"subject": str, "video": str}).fillna({"crop_method": ""}),
                        tuple(example["video"]), pd.read_csv(files[1]), example["thresholds"])
    if videos.empty:
        raise ValueError(f"{table.dataset}: no video to spot in {table.annotation.parent}")
    # each video's intervals kept as it is done: a real release takes hours, and a stopped run goes on
    # from the next video (the first is spotted again: its scores are the timeline's)
    done = Path(f"{stem}_videos")
    detector, parts, example = FaceDetector(), [], None
    for subject, video in zip(videos["subject"], videos["video"]):
        part = done / f"{subject}_{video}.csv"
        if example is not None and part.is_file():
            parts.append(pd.read_csv(part, dtype={"subject": str, "video": str, "crop_method": str},
                                     keep_default_na=False)[PREDICTION_COLUMNS])
            continue
        result = spot_video(table.frames(subject, video), params, detector)
        parts.append(result.intervals.assign(subject=subject, video=video, crop_method=result.crop_method)
                     [PREDICTION_COLUMNS])
        _io.write_csv(part, parts[-1])
        if example is None:
            scores = pd.DataFrame({"frame": result.numbers, **{k: v for k, v in result.scores.items()}})
            example = ((subject, video), scores, {k: float(v) for k, v in result.thresholds.items()})
    spotted = pd.concat(parts, ignore_index=True)
    _io.write_csv(files[1], example[1])
    _io.write_text(files[0], json.dumps({"video": list(example[0]), "thresholds": example[2]}))
    _io.write_csv(files[2], spotted)  # last: its presence marks the spotting done
    return Spotting(spotted, example[0], example[1], example[2])


# ----------------------------------------------------------------------------- scores
def video_bootstrap(rows: pd.DataFrame, statistic, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(rows)`` over resamples of whole videos (subject,
    video) with replacement: the intervals of one video are not independent."""
    videos = list(rows.groupby(["subject", "video"], sort=True).groups.values())
    if not videos:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        chosen = rng.integers(len(videos), size=len(videos))
        value = statistic(rows.loc[np.concatenate([videos[i] for i in chosen])])
        if np.isfinite(value):
            values.append(value)
    return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))) if values else (np.nan, np.nan)


def spotting_outcomes(spotted: pd.DataFrame, truths: pd.DataFrame, lengths) -> pd.DataFrame:
    """One row per truth (outcome tp / fn) and per kept prediction (fp), our MEGC2020 rules, kind by kind."""
    from tsfmicro.spotting_metrics import KINDS, length_filter, match_table

    kept = length_filter(spotted, lengths) if lengths is not None else spotted
    parts = []
    for kind in KINDS:
        matched = match_table(kept[kept["kind"] == kind], truths[truths["kind"] == kind])
        parts.append(matched.assign(kind=kind))
    return pd.concat(parts, ignore_index=True)


def _recall(rows: pd.DataFrame) -> float:
    truth = rows["outcome"].isin(["tp", "fn"]).sum()
    return float((rows["outcome"] == "tp").sum() / truth) if truth else float("nan")


def _f1(rows: pd.DataFrame) -> float:
    tp, fp, fn = ((rows["outcome"] == o).sum() for o in ("tp", "fp", "fn"))
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else float("nan")


def chance_recall(spotted: pd.DataFrame, truths: pd.DataFrame, videos: pd.DataFrame) -> float:
    """Recall of a spotter placing as many intervals per video as ours, each of the truth's own
    length, at uniformly random positions: a truth of L frames in an N-frame video is hit (IoU >= 0.5
    between equal lengths needs an overlap >= 2L/3, a start within L/3 of the truth's) by one random
    interval with probability (2 floor(L/3) + 1) / (N - L + 1), by any of k at most k times that."""
    frames = {(s, v): n for s, v, n in zip(videos["subject"], videos["video"], videos["frames"])}
    counts = spotted.groupby(["subject", "video"]).size()
    chances = []
    for row in truths.itertuples(index=False):
        length, n = row.offset - row.onset + 1, frames.get((row.subject, row.video), 0)
        k = int(counts.get((row.subject, row.video), 0))
        chances.append(min(1.0, k * (2 * (length // 3) + 1) / max(1, n - length + 1)))
    return float(np.mean(chances)) if chances else float("nan")


def _accuracy(rows: pd.DataFrame) -> float:
    return float((rows["truth"] == rows["pred"]).mean()) if len(rows) else float("nan")


class LongVideosPage(Page):
    """What notebooks/13_long_videos.ipynb shows (module docstring)."""

    @property
    def datasets(self) -> tuple[str, ...]:
        return self.section.datasets if self.section is not None else ()

    @functools.cached_property
    def roots(self) -> dict[str, Path | None]:
        return {name: long_video_root(self.parameters, name) for name in self.datasets}

    @property
    def missing(self) -> list[str]:
        """The datasets whose folders were not given (real data)."""
        return [name for name, root in self.roots.items() if root is None]

    @functools.cached_property
    def tables(self) -> dict:
        """name -> tsfmicro.data.long_videos.LongVideoTable of each dataset whose folder is given."""
        from tsfmicro.data.long_videos import load_long_videos

        return {name: load_long_videos(name, root) for name, root in self.roots.items() if root is not None}

    @functools.cached_property
    def truths_by_dataset(self) -> dict[str, pd.DataFrame]:
        """name -> the ground-truth intervals (tsfmicro.engine.recognise.TRUTH_COLUMNS; ``emotion`` an
        STR class): synthetic, the planted micro and macro intervals (the manifest: the answer);
        real, the sheet's intervals with their label mapped to the STR classes (empty when the sheet
        has none: SAMM-LV's emotions are in the SAMM micro sheet, joined by MEAN, not done here)."""
        out = {}
        for name, table in self.tables.items():
            if self.synthetic:
                rows = planted(self.roots[name])
                rows = rows[rows["kind"] != "blink"].copy()
                rows["subject"] = [_synthetic_subject(s, name) for s in rows["subject"]]
                out[name] = rows.rename(columns={"label": "emotion"})[
                    ["subject", "video", "onset", "apex", "offset", "kind", "emotion"]].reset_index(drop=True)
            else:
                emotions = _spec(name).reader.emotions
                rows = table.intervals.copy()
                joined = self.clip_labels(name)  # SAMM-LV: the emotion is the SAMM clip's of the same name
                labels = [label or joined.get(interval_id, "") for label, interval_id in
                          zip(rows["label"].astype(str), rows["interval_id"].astype(str))]
                rows["emotion"] = [emotions.get(label.lower(), label.lower()) for label in labels]
                out[name] = rows[["subject", "video", "onset", "apex", "offset", "kind", "emotion"]]
        return out

    def clip_labels(self, name: str) -> dict[str, str]:
        """clip id -> label of the clip dataset of the same people (its annotation read, when its
        folder is given): the emotions a long-video sheet without them joins by the interval's name
        (MEAN joins the SAMM micro sheet on Filename: long_videos.md section 1); {} otherwise."""
        from tsfmicro.data.annotations import load_clips
        from tsfmicro.params import DatasetRootMissing

        people = _spec(name).reader.same_people
        if people is None:
            return {}
        try:
            clips = load_clips(people, self.parameters.root(people)).clips
        except (DatasetRootMissing, FileNotFoundError):
            return {}
        return dict(zip(clips["clip_id"].astype(str), clips["label"].astype(str)))

    @functools.cached_property
    def blinks(self) -> dict[str, pd.DataFrame]:
        """name -> the planted blinks (synthetic only): distractors the spotter should not report."""
        if not self.synthetic:
            return {}
        out = {}
        for name in self.tables:
            rows = planted(self.roots[name])
            rows = rows[rows["kind"] == "blink"].copy()
            rows["subject"] = [_synthetic_subject(s, name) for s in rows["subject"]]
            out[name] = rows
        return out

    @functools.cached_property
    def spotting(self) -> dict[str, Spotting]:
        folder = self.parameters.path("prepared") / "long_videos"
        return {name: spot(table, folder) for name, table in self.tables.items()}

    @functools.cached_property
    def recognition(self) -> dict:
        """name -> tsfmicro.engine.recognise.SpotRecognition, for the datasets with a recogniser."""
        from tsfmicro.engine.recognise import recognise_spotted

        out = {}
        for name, key in recognisers(self.parameters).items():
            if name not in self.tables:
                continue
            run = self.runs[key]
            out[name] = recognise_spotted(run, self.tables[name], self.truths_by_dataset[name],
                                          dict(_spec(name).reader.emotions), spotted=self.spotting[name].spotted)
        return out

    # ------------------------------------------------------------------ tables
    def lengths(self, name: str):
        from tsfmicro.spotting_metrics import MEGC2020_LENGTHS

        return MEGC2020_LENGTHS.get(name)

    @functools.cached_property
    def spotting_table(self) -> pd.DataFrame:
        """Per dataset and kind (micro, macro, overall): our MEGC2020 scores (one-to-one matching,
        every video scored, length filter where MEGC2020 has one) and the public scorer's F1, then
        the published MDMD rows (their protocol)."""
        from tsfmicro import reported
        from tsfmicro.spotting_metrics import compare_megc2020, megc2020_spotting

        rows = []
        for name, spotting in self.spotting.items():
            truths = self.truths_by_dataset[name]
            ours = megc2020_spotting(spotting.spotted, truths, self.lengths(name))
            theirs = compare_megc2020(spotting.spotted, truths, self.lengths(name)).set_index("kind")
            for row in ours.itertuples(index=False):
                rows.append(dict(method="MDMD-like (ours)", dataset=_spec(name).display_name, kind=row.kind,
                                 truths=row.truths, predictions=row.predictions, tp=row.tp, fp=row.fp, fn=row.fn,
                                 precision=row.precision, recall=row.recall, f1=row.f1,
                                 f1_original_scorer=theirs.loc[row.kind, "f1_original"],
                                 protocol="ours: grey-level block differences, MEGC2020 lengths, one-to-one"))
        published = reported.spotting_reported()
        for row in published[published["dataset"].isin(self.datasets)].itertuples(index=False):
            rows.append(dict(method=row.method, dataset=_spec(row.dataset).display_name, kind=row.kind,
                             truths=row.truths, predictions=row.tp + row.fp, tp=row.tp, fp=row.fp, fn=row.fn,
                             precision=row.precision, recall=row.recall, f1=row.f1, f1_original_scorer=row.f1,
                             protocol=row.protocol))
        return pd.DataFrame(rows)

    @functools.cached_property
    def strs_table(self) -> pd.DataFrame:
        """Per recognised dataset: STRS and its parts, ours and the public scorer's."""
        from tsfmicro.spotting_metrics import compare_strs

        parts = []
        for name, result in self.recognition.items():
            truths = self.truths_by_dataset[name]
            table = compare_strs(result.submission(), truths, result.emotions)
            parts.append(table.assign(dataset=_spec(name).display_name)[["dataset", "quantity", "ours", "original",
                                                                           "differs"]])
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["dataset", "quantity", "ours", "original", "differs"])

    def pairs(self, name: str) -> pd.DataFrame:
        """The spotted true positives of ``name`` (our one-to-one matching, every kind): subject,
        video, truth (emotion), pred (recognised emotion), iou."""
        from tsfmicro.spotting_metrics import strs

        result = self.recognition[name]
        return strs(result.submission(), self.truths_by_dataset[name], result.emotions).pairs

    def truth_rows(self, name: str) -> pd.DataFrame:
        """The ground-truth intervals recognised (perfect spotting): subject, video, truth, pred."""
        result = self.recognition[name]
        rows = result.truths[result.truths["emotion"].astype(str).isin(result.emotions)]  # those with an emotion
        return pd.DataFrame({"subject": rows["subject"], "video": rows["video"], "truth": rows["emotion"].astype(str),
                             "pred": rows["pred_emotion"].astype(str)})

    @functools.cached_property
    def recognition_table(self) -> pd.DataFrame:
        """Per recognised dataset: recognition accuracy on the ground-truth intervals and on the
        spotted true positives, each with a video-bootstrap 95 % interval, beside chance."""
        rows = []
        for name, result in self.recognition.items():
            for what, frame in (("ground-truth intervals (perfect spotting)", self.truth_rows(name)),
                                ("spotted true positives", self.pairs(name))):
                low, high = video_bootstrap(frame, _accuracy)
                majority = frame["truth"].value_counts(normalize=True).max() if len(frame) else float("nan")
                rows.append(dict(dataset=_spec(name).display_name, intervals=what, n=len(frame),
                                 accuracy=_accuracy(frame), low=low, high=high, chance=1 / len(result.emotions),
                                 majority=majority))
        return pd.DataFrame(rows, columns=["dataset", "intervals", "n", "accuracy", "low", "high", "chance",
                                           "majority"])

    def timeline(self, name: str) -> dict:
        """The example video of ``name`` for plots.spotting_timeline: scores, thresholds, truths,
        spotted (with the recognised emotion where there is a recogniser), title."""
        spotting = self.spotting[name]
        subject, video = spotting.example
        of = lambda frame: frame[(frame["subject"] == subject) & (frame["video"] == video)]  # noqa: E731
        spotted = of(self.recognition[name].spotted) if name in self.recognition else of(spotting.spotted)
        return dict(scores=spotting.scores, thresholds=spotting.thresholds, truths=of(self.truths_by_dataset[name]),
                    spotted=spotted, title=f"{_spec(name).display_name}, subject {subject}, video {video}")

    # ------------------------------------------------------------------ sentences and truths
    def summary(self) -> str:
        if self.section is None:
            return NOT_CONFIGURED
        parts = []
        if self.missing:
            parts.append(f"Not given (no folder): {', '.join(_spec(n).display_name for n in self.missing)}; set "
                         f"roots: or {', '.join(_spec(n).root_variable for n in self.missing)}.")
        table = self.spotting_table
        for name in self.tables:
            row = table[(table["dataset"] == _spec(name).display_name) & (table["method"] == "MDMD-like (ours)")
                        & (table["kind"] == "overall")].iloc[0]
            text = (f"{_spec(name).display_name}: the MDMD-like spotter found {row.tp} of {row.truths} intervals "
                    f"with {row.fp} false positives (overall F1 {row.f1:.2f})")
            if name in self.recognition:
                strs = self.strs_table
                value = strs[(strs["dataset"] == _spec(name).display_name) & (strs["quantity"] == "strs")]["ours"]
                rec = self.recognition_table[self.recognition_table["dataset"] == _spec(name).display_name]
                text += (f"; STRS {float(value.iloc[0]):.2f}; recognition accuracy {rec['accuracy'].iloc[0]:.0%} on "
                         f"the ground-truth intervals and {rec['accuracy'].iloc[1]:.0%} on the spotted ones "
                         f"(chance {rec['chance'].iloc[0]:.0%})")
            else:
                text += ("; no clip dataset of the same people, so no recognition (that would need a LOSO run on "
                         "its own intervals)")
            parts.append(text + ".")
        return " ".join(parts)

    def truths(self) -> list[Truth]:
        """Planted intervals recovered (recall and F1 with a video-bootstrap interval against chance),
        blinks mostly not spotted, recognition of the spotted true positives above chance."""
        if self.section is None:
            return []
        out = []
        for name, spotting in self.spotting.items():
            label = _spec(name).display_name
            truths = self.truths_by_dataset[name]
            outcomes = spotting_outcomes(spotting.spotted, truths, self.lengths(name))
            recall, f1 = _recall(outcomes), _f1(outcomes)
            low, high = video_bootstrap(outcomes, _recall)
            chance = chance_recall(spotting.spotted, truths, self.tables[name].videos)
            out.append(Truth(
                f"{label}: planted micro and macro intervals spotted (recall, IoU >= 0.5)",
                f"above chance ({chance:.0%}: as many random intervals per video, of each truth's length)",
                f"{recall:.0%} [{low:.0%}, {high:.0%}] of {len(truths)}; F1 {f1:.2f}",
                above_recovered(low, high, chance), "95 % video bootstrap; chance worked out in chance_recall"))
            blinks = self.blinks.get(name)
            if blinks is not None and len(blinks):
                matched = spotting_outcomes(spotting.spotted.assign(kind="blink"), blinks, None)
                hit = int((matched["outcome"] == "tp").sum())
                out.append(Truth(f"{label}: planted blinks (a distractor) spotted", "at most half",
                                 f"{hit} of {len(blinks)}", hit <= len(blinks) / 2,
                                 "a blink counts as spotted when an interval matches it with IoU >= 0.5 "
                                 "(any kind); decided on the count"))
            if name in self.recognition:
                pairs = self.pairs(name)
                low, high = video_bootstrap(pairs, _accuracy)
                chance = 1 / len(self.recognition[name].emotions)
                out.append(Truth(
                    f"{label}: emotion of the spotted true positives recognised "
                    f"({len(self.recognition[name].emotions)} STR classes)",
                    f"above chance ({chance:.0%})", f"{_accuracy(pairs):.0%} [{low:.0%}, {high:.0%}] of {len(pairs)}",
                    above_recovered(low, high, chance), "95 % video bootstrap"))
        return out

    def caveat(self) -> str:
        if self.section is None or not self.synthetic:
            return ""
        return ("These are SYNTHETIC long videos (stock faces with planted movements at the real frame rate, a few "
                "hundred frames each): they show the pipeline recovering what was planted, not how well it spots "
                "or recognises real expressions; the MDMD row is the published baseline on the real data, their "
                "protocol.")


CHAPTER = register(Chapter(name="long_videos", notebook="13_long_videos",
                           title="From a long recording: spot, then recognise", runs=runs, page=LongVideosPage,
                           section=Section))
