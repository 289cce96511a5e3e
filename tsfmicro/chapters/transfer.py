"""Chapter 14, Closing the cross-dataset gap: the remedies the paper's conclusion names for its
drop on other populations ("transfer learning and contrastive learning"), measured. For each
target of ``transfer: targets`` and source of ``transfer: sources``, on the shared 3-class task
(3class_megc, so every run predicts the same classes of the same clips):

* ``LOSO``: the target's own leave-one-subject-out run (the cross-dataset chapter's diagonal, shared);
* ``transfer from S``: trained on all of S, tested on all of the target (the cross-dataset
  chapter's run, shared);
* ``fine-tune from S (mode)``: that run's weights fine-tuned under the target's LOSO folds
  (tsfmicro.engine.transfer; the held-out subject is in neither stage);
* ``contrastive``: the target's LOSO with the supervised contrastive loss beside cross-entropy
  (``transfer: contrastive_weight``; the run options ``supcon_weight``/``supcon_temperature``).

Every run predicts every clip of the target once per seed, so each is compared with plain LOSO
(and fine-tuning with plain transfer) by the paired subject x seed bootstrap.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import pandas as pd

from tsfmicro import metrics, report
from tsfmicro.chapters import Chapter, ScoresPage, Truth, paired_recovered, register
from tsfmicro.chapters.cross_dataset import transfer_truth
from tsfmicro.chapters.imbalance import rare_class_sentence
from tsfmicro.results import Run
from tsfmicro.sections import PlannedRun, names, run_options, seeds, setting

COLUMN = "training"
LOSO = "LOSO"
CONTRASTIVE = "contrastive"
NOT_CONFIGURED = ("These parameters do not configure this chapter (no `transfer:` section), so it shows nothing.")


def _shared_datasets() -> tuple[str, ...]:
    from tsfmicro.data import DATASETS, TASKS
    from tsfmicro.data.registry import SHARED_TASK

    return tuple(name for name in DATASETS if SHARED_TASK in TASKS[name] and name != "megc2019")


def _sources() -> tuple[str, ...]:
    from tsfmicro.engine.transfer import COMPOSITE

    return (*_shared_datasets(), COMPOSITE)


def _modes() -> tuple[str, ...]:
    from tsfmicro.engine.transfer import FINETUNE_MODES

    return FINETUNE_MODES


def _weight(value, key, params) -> list[str]:
    """A number above 0 (null: no contrastive run), and a build that has the option."""
    from tsfmicro.options import OPTIONS

    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return [f"{key}: {value!r} must be a number above 0 (the contrastive loss's weight beside cross-entropy), "
                "or null for no contrastive run"]
    if "supcon_weight" not in {row.name for row in OPTIONS}:
        return [f"{key}: this tsfmicro has no supcon_weight run option (the supervised contrastive loss); set "
                f"{key}: null"]
    return []


@dataclass(frozen=True)
class Section:
    """``transfer:`` (optional; null or left out: no such chapter)."""

    targets: tuple[str, ...] = setting(names(_shared_datasets))
    sources: tuple[str, ...] = setting(names(_sources))
    finetune: tuple[str, ...] = setting(names(_modes), default=("all",))
    contrastive_weight: float | None = setting(_weight, default=None, null_ok=True)
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)  # None: the parameters' seeds

    @staticmethod
    def problems(raw, name, params) -> list[str]:
        targets, sources = raw.get("targets"), raw.get("sources")
        if isinstance(targets, list) and isinstance(sources, list) and targets and sources and not [
                (t, s) for t in targets for s in sources if t != s]:
            return [f"{name}: every source is its target ({', '.join(map(str, targets))}): give a source other "
                    "than the target (a dataset, or composite)"]
        from tsfmicro.data.registry import dataset_info
        from tsfmicro.engine.transfer import COMPOSITE, COMPOSITE_DATASET

        parts = dataset_info(COMPOSITE_DATASET).parts
        outside = [str(t) for t in targets or () if t not in parts] if isinstance(targets, list) else []
        if isinstance(sources, list) and COMPOSITE in sources and outside:
            return [f"{name}.sources: composite pre-trains on the {COMPOSITE_DATASET} composite without the target, "
                    f"so every target must be one of its parts ({', '.join(parts)}); {', '.join(outside)} is not"]
        return []


def pairs(params) -> list[tuple[str, str]]:
    """(target, source) for every target and every source other than it; [] without the section."""
    section = params.section("transfer")
    if section is None:
        return []
    return [(target, source) for target in section.targets for source in section.sources if source != target]


def finetune_label(source: str, mode: str) -> str:
    return f"fine-tune from {source} ({mode})"


def transfer_label(source: str) -> str:
    return f"transfer from {source}"


def runs(params) -> dict:
    """(target, task, variant) -> run: LOSO, each source's plain transfer (a dataset source; the
    composite's is its leave-one-dataset-out fold, not a run of the target's clips) and
    fine-tuning, and the contrastive LOSO run."""
    from tsfmicro.data.registry import SHARED_TASK
    from tsfmicro.engine.transfer import COMPOSITE

    section = params.section("transfer")
    if section is None:
        return {}
    seeds_ = tuple(params.section_seeds("transfer"))
    planned = {}
    for target in section.targets:
        planned[(target, SHARED_TASK, LOSO)] = PlannedRun(target, SHARED_TASK, "ts_late", seeds_, run_options())
        for source in [s for s in section.sources if s != target]:
            if source != COMPOSITE:  # the cross-dataset chapter's run: trained on the source, tested on the target
                planned[(target, SHARED_TASK, transfer_label(source))] = PlannedRun(
                    source, SHARED_TASK, "ts_late", seeds_, run_options(test_dataset=target))
            for mode in section.finetune:
                planned[(target, SHARED_TASK, finetune_label(source, mode))] = PlannedRun(
                    target, SHARED_TASK, "ts_late", seeds_, run_options(pretrained=source, finetune=mode))
        if section.contrastive_weight is not None:
            planned[(target, SHARED_TASK, CONTRASTIVE)] = PlannedRun(
                target, SHARED_TASK, "ts_late", seeds_, run_options(supcon_weight=float(section.contrastive_weight)))
    return planned


def on_target(run: Run, target: str) -> Run:
    """A cross-dataset run seen as a run of its test dataset: subjects without the dataset prefix
    the join gave them, ``dataset`` the target, so it pairs with the target's other runs."""
    moved = run.predictions.assign(subject=[str(s).removeprefix(f"{target}/") for s in run.predictions["subject"]])
    return dataclasses.replace(run, predictions=moved, config={**run.config, "dataset": target})


class TransferPage(ScoresPage):
    column = COLUMN

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return pairs(self.parameters)

    @functools.cached_property
    def runs(self) -> dict:
        """(target, task, variant) -> run, a cross-dataset run seen on its target (:func:`on_target`)."""
        found = {}
        for key, planned in self.planned.items():
            run = self.study.planned(planned)
            found[key] = on_target(run, key[0]) if planned.dataset != key[0] else run
        return found

    @property
    def table(self) -> pd.DataFrame:
        return report.scores_wide(self.scores, column=COLUMN)

    @functools.cached_property
    def paired(self) -> pd.DataFrame:
        """Every variant against plain LOSO (UF1, fixed protocol, paired subject x seed bootstrap)."""
        return report.paired_differences(self.runs, COLUMN, LOSO)

    @property
    def paired_table(self) -> pd.DataFrame:
        return report.paired_table(self.paired, COLUMN, LOSO)

    @functools.cached_property
    def recall(self) -> pd.DataFrame:
        return report.class_recall(self.runs, COLUMN)

    @property
    def recall_table(self) -> pd.DataFrame:
        return report.class_recall_wide(self.recall, COLUMN)

    @functools.cached_property
    def label_recall(self) -> pd.DataFrame:
        """The share of each original label's clips (SAMM's contempt, fear, ...: the annotation's
        emotions, grouped into the shared task's classes) that each run assigns to their class, with
        its 95 % subject (x seed) bootstrap interval: the rare emotions the 3 classes hide."""
        frames = []
        for target in dict.fromkeys(key[0] for key in self.runs):
            samples = self.study.samples(target, next(key[1] for key in self.runs if key[0] == target)).samples
            frames.append(label_recall({key: run for key, run in self.runs.items() if key[0] == target}, samples))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def label_recall_table(self) -> pd.DataFrame:
        """:attr:`label_recall` for display: one row per dataset and label (fewest clips first), a
        column per way of training, in percent."""
        table = self.label_recall.assign(value=[
            report.format_interval(r.mean, r.low, r.high) for r in self.label_recall.itertuples()])
        wide = table.pivot_table(index=["dataset", "label", "class", "clips"], columns=COLUMN, values="value",
                                 aggfunc="first", sort=False)
        wide.columns = [f"{name} %" for name in wide.columns]
        return wide.reset_index().sort_values(["dataset", "clips"], kind="stable").reset_index(drop=True)

    @functools.cached_property
    def gaps(self) -> pd.DataFrame:
        """Per target, source and fine-tuning mode: the gap (LOSO − transfer) and what fine-tuning
        recovered of it (fine-tune − transfer), UF1 fixed, each with its paired interval."""
        from tsfmicro.data.registry import SHARED_TASK

        section = self.section
        rows = []
        for target, source in self.pairs:
            loso = self.runs.get((target, SHARED_TASK, LOSO))
            plain = self.runs.get((target, SHARED_TASK, transfer_label(source)))
            if loso is None or plain is None:
                continue
            gap = _paired(loso, plain)
            for mode in section.finetune:
                tuned = self.runs[(target, SHARED_TASK, finetune_label(source, mode))]
                closed = _paired(tuned, plain)
                rows.append({"target": target, "source": source, "finetune": mode,
                             "gap": gap["difference"], "gap_low": gap["low"], "gap_high": gap["high"],
                             "gap_verdict": gap["verdict"], "recovered": closed["difference"],
                             "recovered_low": closed["low"], "recovered_high": closed["high"],
                             "recovered_verdict": closed["verdict"],
                             "share": closed["difference"] / gap["difference"] if gap["difference"] > 0 else None})
        return pd.DataFrame(rows, columns=["target", "source", "finetune", "gap", "gap_low", "gap_high", "gap_verdict",
                                           "recovered", "recovered_low", "recovered_high", "recovered_verdict",
                                           "share"])

    @property
    def gap_table(self) -> pd.DataFrame:
        """:attr:`gaps` for display, in UF1 points."""
        return pd.DataFrame({
            "target": self.gaps["target"], "source": self.gaps["source"], "fine-tuned": self.gaps["finetune"],
            "gap: LOSO − transfer, UF1 points": [report.format_interval(r.gap, r.gap_low, r.gap_high, 1, "+")
                                                 for r in self.gaps.itertuples()],
            "recovered: fine-tune − transfer, UF1 points": [
                report.format_interval(r.recovered, r.recovered_low, r.recovered_high, 1, "+")
                for r in self.gaps.itertuples()],
            "share of the gap closed": ["n/a (no gap)" if r.share is None or pd.isna(r.share)
                                        else f"{100 * r.share:.0f} %" for r in self.gaps.itertuples()]})

    def summary(self) -> str:
        """The closing note: for each target and source, the gap and how much of it each remedy closed."""
        if not self.runs:
            return NOT_CONFIGURED
        sentences = [gap_sentence(row) for row in self.gaps.itertuples()]
        sentences.append(report.paired_sentence(self.paired, COLUMN, LOSO, "training variants"))
        sentences.append(rare_class_sentence(self.recall, COLUMN))
        sentences.append(report.flag_sentence(self.scores, COLUMN))
        return " ".join(text for text in sentences if text)

    def truths(self) -> list[Truth]:
        """Per target and source: the planted shift puts plain transfer below LOSO (the cross-dataset
        chapter's truth), fine-tuning recovers part of it (fine-tune above plain transfer, paired);
        the contrastive run against LOSO, with nothing planted about it."""
        from tsfmicro.data.registry import SHARED_TASK

        truths = []
        for target, source in self.pairs:
            loso = self.runs.get((target, SHARED_TASK, LOSO))
            plain = self.runs.get((target, SHARED_TASK, transfer_label(source)))
            if loso is None or plain is None:
                continue
            truths.append(transfer_truth(plain, loso, source, target))
            for mode in self.section.finetune:
                tuned = self.runs[(target, SHARED_TASK, finetune_label(source, mode))]
                truths.append(finetune_truth(tuned, plain, loso, source, target, mode))
        for (target, task, variant), run in self.runs.items():
            if variant == CONTRASTIVE and (target, task, LOSO) in self.runs:
                truths.append(contrastive_truth(run, self.runs[(target, task, LOSO)], target))
        return truths

    def caveat(self) -> str:
        return ("These runs are on SYNTHETIC data, whose only shift between datasets is the planted one (grey SAMM "
                "frames at another size): they show whether each remedy undoes a known shift, not what it does for "
                "real populations; run params/paper.yaml for that." if self.runs and self.synthetic else "")


# ----------------------------------------------------------------------------- numbers and truths
def _paired(reference: Run, other: Run) -> dict:
    """UF1 (fixed) of ``reference`` minus ``other``, paired subject x seed bootstrap; NaNs and
    verdict "not paired" when the seeds differ."""
    if reference.predictions["seed"].nunique() != other.predictions["seed"].nunique():
        return {"difference": float("nan"), "low": float("nan"), "high": float("nan"), "verdict": "not paired"}
    return metrics.paired_subject_seed_difference(reference.predictions, other.predictions, "pred_fixed",
                                                  len(reference.class_names))["uf1"]


def label_recall(runs: dict, samples: pd.DataFrame, protocol: str = "fixed") -> pd.DataFrame:
    """Per run (keyed (dataset, task, variant), all of one dataset) and original label of
    ``samples`` (the dataset's sample table: ``subject``, ``clip_id``, ``label``): ``clips`` (per
    seed), ``class`` (the task's class the label is grouped into), ``mean``/``low``/``high``: the share
    of those clips predicted as their class (the label's recall), 95 % subject x seed bootstrap."""
    column = f"pred_{report.check_protocol(protocol)}"
    labels = samples.assign(subject=samples["subject"].astype(str), clip_id=samples["clip_id"].astype(str))[
        ["subject", "clip_id", "label"]]
    rows = []
    for (dataset, task, variant), run in runs.items():
        predictions = run.predictions.assign(subject=run.predictions["subject"].astype(str),
                                             clip_id=run.predictions["clip_id"].astype(str))
        joined = predictions.merge(labels, on=["subject", "clip_id"], how="left", validate="many_to_one")
        for label, part in joined.dropna(subset=["label"]).groupby("label", sort=True):
            found = metrics.subject_seed_interval(part, column, len(run.class_names))["accuracy"]
            rows.append({"dataset": dataset, "task": task, COLUMN: variant, "label": label,
                         "class": run.class_names[int(part["true"].iloc[0])],
                         "clips": int((part["seed"] == part["seed"].min()).sum()),
                         "mean": found["mean"], "low": found["low"], "high": found["high"]})
    return pd.DataFrame(rows, columns=["dataset", "task", COLUMN, "label", "class", "clips", "mean", "low", "high"])


def finetune_truth(tuned: Run, plain: Run, loso: Run, source: str, target: str, mode: str) -> Truth:
    """Fine-tuning (``mode``) from ``source`` above plain transfer from it on ``target`` (UF1,
    fixed, paired): recovered when fine-tune − transfer lies above 0; the share of the gap
    (LOSO − transfer) it closed is in the measurement."""
    found, gap = _paired(tuned, plain), _paired(loso, plain)
    truth = f"{target}: fine-tuning ({mode}) from {source} closes part of the gap left by plain transfer"
    expected = "above plain transfer (it trains on the target's own domain, the held-out subject excepted)"
    if found["verdict"] == "not paired":
        return Truth(truth, expected, "not paired (different numbers of seeds)", None,
                     "not decided: a paired comparison needs as many seeds in both runs")
    share = (f"; {100 * found['difference'] / gap['difference']:.0f} % of the gap "
             f"({100 * gap['difference']:.1f} points)" if gap["difference"] > 0 else "; no gap to close")
    measured = (f"fine-tune − transfer {report.format_interval(found['difference'], found['low'], found['high'], 1, '+')}"
                f" points{share}")
    flag = report.one_class_flag(tuned.predictions, "pred_fixed", tuned.class_names)
    if flag:
        return Truth(truth, expected, measured, None, f"not decided: the fine-tuned model is degenerate ({flag})")
    reading = report.VERDICTS[found["verdict"]].format(reference="fine-tuning")
    return Truth(truth, expected, measured, paired_recovered(found["verdict"]),
                 f"{reading} (paired {report.interval_name(tuned.predictions['seed'].nunique())})")


def contrastive_truth(contrastive: Run, loso: Run, target: str) -> Truth:
    """The contrastive LOSO run against plain LOSO (UF1, fixed, paired): shown, nothing planted
    (it trains on the target alone, so the planted shift between datasets does not reach it)."""
    found = _paired(contrastive, loso)
    truth = f"{target}: the supervised contrastive loss beside cross-entropy, against plain LOSO"
    expected = "no truth planted (no shift inside one dataset)"
    if found["verdict"] == "not paired":
        return Truth(truth, expected, "not paired (different numbers of seeds)", None, "not decided")
    measured = (f"contrastive − LOSO {report.format_interval(found['difference'], found['low'], found['high'], 1, '+')}"
                " points")
    return Truth(truth, expected, measured, None,
                 "nothing planted; the paired interval reads: "
                 + report.VERDICTS[found["verdict"]].format(reference="the contrastive run"))


def gap_sentence(row) -> str:
    """One target, source and fine-tuning mode of :attr:`TransferPage.gaps`, in words."""
    from tsfmicro.data.registry import display_name

    source, target = display_name(row.source), display_name(row.target)  # a composite source has no plain transfer
    gap = report.format_interval(row.gap, row.gap_low, row.gap_high, 1)  # "lower" says the sign
    recovered = report.format_interval(row.recovered, row.recovered_low, row.recovered_high, 1, "+")
    text = (f"Trained on {source} alone, {target} scores UF1 {gap} points lower than its own LOSO gives (LOSO "
            f"minus transfer, paired: the gap); fine-tuning ({row.finetune}) under {target}'s LOSO folds changes "
            f"the plain transfer's score by {recovered} points")
    if row.share is not None and not pd.isna(row.share):
        text += f", {100 * row.share:.0f} % of the gap"
    reading = {"reference higher": "the interval lies above 0: fine-tuning closes part of the gap",
               "reference lower": "the interval lies below 0: fine-tuning scores lower than plain transfer",
               "inside noise": "the interval contains 0: these runs do not show fine-tuning closing the gap",
               "no difference": "no difference in any resample",
               "not paired": "not compared (different numbers of seeds)"}[row.recovered_verdict]
    return f"{text} ({reading})."


CHAPTER = register(Chapter(name="transfer", notebook="14_transfer", title="Closing the cross-dataset gap", runs=runs,
                           page=TransferPage, section=Section))
