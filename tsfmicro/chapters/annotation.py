"""Chapter 08, Onset and apex sensitivity: the main results' fold models of ``annotation:``'s
dataset/task tested with the apex, or the onset, moved by each of ``shifts`` (no retraining);
with ``automatic_apex: true``, T-S late trained on the automatic apex against the annotated one;
and the clips whose annotated apex is the onset."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsfmicro import sensitivity
from tsfmicro.chapters import Chapter, Page, Truth, above_recovered, register
from tsfmicro.report import METRIC_NAMES, format_interval, summary_table
from tsfmicro.results import Run
from tsfmicro.sections import OnMainResultsTask, PlannedRun, flag, run_options, seeds, setting


def _shifts(shifts, key, params) -> list[str]:
    """A non-empty list of distinct percentages in [-100, 100]."""
    from tsfmicro.data.moved_frames import MAX_SHIFT_PERCENT

    numbers = isinstance(shifts, list) and shifts and all(
        isinstance(p, (int, float)) and not isinstance(p, bool) and abs(p) <= MAX_SHIFT_PERCENT for p in shifts)
    if not numbers:
        return [f"{key}: {shifts!r} must be a non-empty list of percentages of the "
                f"onset-offset length in [-{MAX_SHIFT_PERCENT:g}, {MAX_SHIFT_PERCENT:g}], "
                "e.g. [-5, -2, -1, 1, 2, 5] (0 is always evaluated)"]
    if len(set(shifts)) != len(shifts):
        return [f"{key}: {shifts!r} lists a shift more than once"]
    return []


@dataclass(frozen=True)
class Section(OnMainResultsTask):
    """``annotation:`` (optional; null or left out: no such chapter)."""

    dataset: str = setting()
    task: str = setting()
    shifts: tuple[float, ...] = setting(_shifts)  # percent of the onset-offset length
    automatic_apex: bool = setting(flag(), default=False)
    seeds: tuple[int, ...] | None = setting(seeds(), default=None, null_ok=True)  # None: the parameters' seeds



def runs(params) -> dict:
    """"annotated" -> T-S late with the annotated apex (shared with the main results) and, with
    ``automatic_apex: true``, "automatic" -> with the automatic apex, on the same seeds."""
    section = params.section("annotation")
    if section is None:
        return {}
    dataset, task, seeds = section.dataset, section.task, params.section_seeds("annotation")
    planned = {"annotated": PlannedRun(dataset, task, "ts_late", seeds)}
    if section.automatic_apex:
        planned["automatic"] = PlannedRun(dataset, task, "ts_late", seeds, run_options(apex="automatic"))
    return planned


class AnnotationPage(Page):
    @property
    def annotated(self) -> Run:
        return self.runs["annotated"]

    @property
    def automatic(self) -> Run | None:
        return self.runs.get("automatic")

    @property
    def seed(self) -> int:
        """The seed whose fold weights are kept."""
        return self.seeds[0]

    @property
    def figure_label(self) -> str:
        section = self.section
        return f"{section.dataset} {section.task}, ts_late, seed {self.seed} | " + self.study.label("fixed", [self.seed])

    def shifted_data(self):
        """Face crops of the section's task with the frames of ``shifts`` (their own cache file)."""
        section = self.section
        return self.study.prepared(section.dataset, section.task, shifts=list(section.shifts))

    def automatic_apex_data(self):
        """Face crops of the section's task with the automatic apex (what the ``apex: automatic`` run trains on)."""
        section = self.section
        return self.study.prepared(section.dataset, section.task, apex="automatic")

    def shift_evaluation(self, run: Run):
        """``run``'s fold models on :meth:`shifted_data` (tsfmicro.engine.evaluate.shift_predictions;
        kept in the run folder, so a second call only reads them)."""
        from tsfmicro.engine.evaluate import shift_predictions

        return shift_predictions(run, self.shifted_data())

    @functools.cached_property
    def evaluation(self):
        """The annotated run's fold models on the shifted frames."""
        return self.shift_evaluation(self.annotated)

    @functools.cached_property
    def all_shift_scores(self) -> pd.DataFrame:
        """Every shift of the section (tsfmicro.sensitivity.shift_scores), those that moved no clip
        included; on synthetic data with the planted movement each shift leaves the model
        (``movement_kept``, tsfmicro.sensitivity.movement_kept)."""
        from tsfmicro import localisation

        predictions = self.evaluation.predictions
        scores = sensitivity.shift_scores(predictions, len(self.annotated.class_names))
        kept = sensitivity.movement_kept(predictions, localisation.read_manifest(
            self.parameters.root(self.section.dataset)) if self.study.source == "SYNTHETIC" else None)
        return scores if kept is None else scores.merge(kept, on=["kind", "percent"], how="left")

    @property
    def shift_scores(self) -> pd.DataFrame:
        """The shifts shown (table, figure, sentences): shift 0 and those that moved a clip."""
        return sensitivity.moved_shifts(self.all_shift_scores)

    def left_out_text(self) -> str:
        """Which shifts moved no clip, so are left out of the table and figure, and why."""
        return sensitivity.left_out_sentence(self.all_shift_scores)

    def truths(self) -> list[Truth]:
        """The planted movement profile (PLANTED, onset/apex sensitivity): the apex moved toward
        the onset, and the onset toward the apex, lower UF1 (:func:`shift_truths`)."""
        return shift_truths(self.shift_scores) if self.section else []

    @property
    def shift_table(self) -> pd.DataFrame:
        return shift_table(self.shift_scores)

    def configured_text(self) -> str:
        return "" if self.section else ("These parameters have no `annotation:` section, so they do not configure "
                                        "this chapter: nothing is drawn.")

    def shift_summary(self) -> str:
        if not self.section:
            return "No shifted annotations: not configured."
        section = self.section
        left_out = self.left_out_text()
        return (sensitivity.shift_sentence(self.shift_scores, section.dataset, section.task) + " "
                + sensitivity.evaluation_note(self.evaluation, self.annotated) + (f" {left_out}" if left_out else ""))

    @functools.cached_property
    def apex_distances(self):
        return sensitivity.apex_distances(self.automatic_apex_data())

    @functools.cached_property
    def apex_difference(self):
        return sensitivity.apex_difference(self.annotated, self.automatic)

    @property
    def apex_table(self) -> pd.DataFrame:
        return apex_comparison_table(self.runs, self.apex_difference)

    def automatic_summary(self) -> str:
        if self.section and self.automatic is not None:
            uf1 = {apex: run.metrics["protocols"]["fixed"]["mean"]["uf1"] for apex, run in self.runs.items()}
            return sensitivity.automatic_apex_sentence(self.apex_difference, self.apex_distances, uf1["annotated"],
                                                       uf1["automatic"])
        return ("No automatic-apex run: `annotation: automatic_apex:` is not true in these parameters."
                if self.section else "No automatic apex: not configured.")

    @functools.cached_property
    def apex_onset(self) -> dict:
        """"dataset task" -> the main results' predictions of the clips whose apex is the onset."""
        main = self.study.chapter("main_results").runs
        return {f"{d} {t}": sensitivity.apex_onset_predictions(run, self.study.data(d, t))
                for (d, t, _), run in main.items()}

    @property
    def apex_onset_table(self) -> pd.DataFrame:
        return sensitivity.apex_onset_table(self.apex_onset)

    def apex_onset_summary(self, overview: pd.DataFrame) -> str:
        counts = {f"{d} {t}": int(n) for d, t, n in zip(overview["dataset"], overview["task"], overview["apex = onset"])}
        return sensitivity.apex_onset_sentence(counts, self.apex_onset)

    def caveat(self) -> str:
        return sensitivity.synthetic_caveat() if self.study.source == "SYNTHETIC" else ""


# ----------------------------------------------------------------------------- truths
# The planted directions: the sin^2 profile rises from the onset to the apex, so moving the apex
# toward the onset (negative apex shifts) or the onset toward the apex (positive onset shifts)
# shrinks the onset/apex difference the model sees.
TOWARD = {"apex": (-1, "toward the onset"), "onset": (1, "toward the apex")}


def shift_truths(scores: pd.DataFrame) -> list[Truth]:
    """From the shown shifts (tsfmicro.sensitivity.moved_shifts): for each shift in a planted
    direction (:data:`TOWARD`), UF1 lower than at shift 0, recovered when its paired
    subject-bootstrap interval lies below 0 (the expected size: ``movement_kept`` where the
    scores carry it, synthetic data); then, per kind with two or more such shifts, the
    scores fall as the shift grows: UF1 (point values) never rises with the shift's size, and the
    largest shift's interval lies below 0."""
    truths = []
    for kind, (sign, toward) in TOWARD.items():
        part = scores[(scores["kind"] == kind) & (np.sign(scores["percent"]) == sign)]
        part = part.iloc[np.argsort(part["percent"].abs().to_numpy(), kind="stable")]
        for _, row in part.iterrows():
            below = above_recovered(row["delta_uf1_low"], row["delta_uf1_high"], 0, side="below")
            kept = row.get("movement_kept", np.nan)
            truths.append(Truth(
                truth=f"{kind} moved {row['percent']:+g} % ({toward}; {row['clips_moved']} of {row['clips']} "
                      f"clips moved): UF1 lower than annotated",
                expected=("lower (the movement shrinks)" if not np.isfinite(kept) else
                          f"lower: the frames given show {100 * kept:.0f} % of the planted movement (mean over clips)"),
                measured="UF1 change " + format_interval(row["delta_uf1"], row["delta_uf1_low"], row["delta_uf1_high"],
                                                         1, "+") + " pp",
                recovered=below,
                note={True: "the paired subject-bootstrap interval lies below 0",
                      False: "the paired subject-bootstrap interval lies above 0: the score rose",
                      None: "not decided: the paired subject-bootstrap interval contains 0"}[below]))
        if len(part) >= 2:
            values = [100 * v for v in part["uf1"]]
            falling = all(later <= earlier for earlier, later in zip(values, values[1:]))
            largest = part.iloc[-1]
            # the trend is decided by the largest shift's interval; point values that rise between
            # two shifts inside their noise leave it undecided, a largest shift above 0 contradicts it
            decided = above_recovered(largest["delta_uf1_low"], largest["delta_uf1_high"], 0, side="below")
            decided = None if decided and not falling else decided
            truths.append(Truth(
                truth=f"UF1 falls as the {kind} moves further {toward}",
                expected="monotonic fall with the shift's size",
                measured="UF1 " + ", ".join(f"{p:+g} %: {v:.1f}" for p, v in zip(part["percent"], values)),
                recovered=decided,
                note=("never rises with the shift, and the largest shift's interval lies below 0" if decided else
                      "the largest shift's interval lies above 0: the score rose" if decided is False else
                      "not decided: UF1 rises between two shifts" if not falling else
                      "not decided: the largest shift's interval contains 0")))
        elif len(part) == 1:
            truths.append(Truth(truth=f"UF1 falls as the {kind} moves further {toward}",
                                expected="monotonic fall with the shift's size", measured="one shift shown",
                                recovered=None, note="not decided: needs two shifts that move clips"))
    return truths


# ----------------------------------------------------------------------------- tables
def shift_table(scores: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """Shifted annotations (tsfmicro.sensitivity.shift_scores) for display: one row per kind and
    shift, UF1/UAR in percent with their subject-bootstrap interval, the change of each from shift
    0 in percentage points with its paired subject-bootstrap interval; on synthetic data, the share
    of the planted movement the shifted frames show (``movement_kept``)."""
    shown = pd.DataFrame({
        "moved": scores["kind"], "shift %": scores["percent"].map(lambda p: f"{p:+g}" if p else "0"),
        "frames moved (median)": scores["median_frames_moved"].map(lambda v: f"{v:g}"),
        "clips moved": [f"{m} of {n}" for m, n in zip(scores["clips_moved"], scores["clips"])],
    })
    if "movement_kept" in scores:
        missing = scores.get("clips_without_manifest", pd.Series(0, index=scores.index)).fillna(0).astype(int)
        left_out = [f" ({n} clip{'s' * (n != 1)} without a manifest row left out)" if n else "" for n in missing]
        shown["planted movement shown %"] = [(f"{100 * v:.0f}" if np.isfinite(v) else "n/a") + note
                                             for v, note in zip(scores["movement_kept"], left_out)]
    for metric in ("uf1", "uar"):
        name = METRIC_NAMES[metric]
        shown[f"{name} %"] = [format_interval(m, lo, hi, digits) for m, lo, hi in
                              zip(scores[metric], scores[f"{metric}_low"], scores[f"{metric}_high"])]
        shown[f"{name} change pp"] = [format_interval(m, lo, hi, digits, "+") for m, lo, hi in zip(
            scores[f"delta_{metric}"], scores[f"delta_{metric}_low"], scores[f"delta_{metric}_high"])]
    return shown


def apex_comparison_table(runs: dict[str, Run], difference: pd.DataFrame, protocol: str = "fixed",
                          digits: int = 1) -> pd.DataFrame:
    """The runs with the annotated and the automatic apex (``runs``: apex -> Run) and their
    difference (tsfmicro.sensitivity.apex_difference), ACC/UF1/UAR in percent with intervals."""
    summary = summary_table(list(runs.values()), protocols=[protocol])
    rows = []
    for apex, (_, row) in zip(runs, summary.iterrows()):
        rows.append({"apex": apex, **{f"{name} %": format_interval(row[metric], row[f"{metric}_low"],
                                                                    row[f"{metric}_high"], digits)
                                      for metric, name in METRIC_NAMES.items()}, "interval": row["interval"]})
    change = difference.set_index("metric")
    rows.append({"apex": "automatic − annotated (pp)",
                 **{f"{name} %": format_interval(change.loc[metric, "difference"], change.loc[metric, "low"],
                                                 change.loc[metric, "high"], digits, "+")
                    for metric, name in METRIC_NAMES.items()},
                 "interval": change["interval"].iloc[0]})
    return pd.DataFrame(rows)


CHAPTER = register(Chapter(name="annotation", notebook="08_annotation_sensitivity", title="Onset and apex sensitivity",
                           runs=runs, page=AnnotationPage, section=Section))
