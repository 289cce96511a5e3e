"""Chapter 05, MEGC2019 composite: each fusion of ``composite:`` trained leave-one-subject-out on
the MEGC2019 composite (3 classes; CASME II, SAMM and SMIC parts), scored on the whole and on each
part, beside the field's published values."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd

from tsfmicro import report, reported
from tsfmicro.chapters import Chapter, Page, Truth, register
from tsfmicro.metrics import PROTOCOLS
from tsfmicro.params import COMPOSITE  # the chapter's dataset and task (also the synthetic composite's size rule)
from tsfmicro.report import WHOLE, part_name
from tsfmicro.results import Run
from tsfmicro.sections import PlannedRun, names, seeds, setting

NOT_CONFIGURED = ("These parameters do not configure the composite chapter (no `composite:` section): there is "
                  "nothing to show.")


def _fusions():
    from tsfmicro.model import FUSIONS

    return FUSIONS


@dataclass(frozen=True)
class Section:
    """``composite:`` (optional; null or left out: no such chapter)."""

    fusions: tuple[str, ...] = setting(names(_fusions), default=("ts_late",))
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)  # None: the parameters' seeds


def runs(params) -> dict:
    """(dataset, task, fusion) -> each fusion of ``composite:`` trained LOSO on the MEGC2019 composite
    (none without the section)."""
    section = params.section("composite")
    if section is None:
        return {}
    dataset, task = COMPOSITE
    return {(dataset, task, fusion): PlannedRun(dataset, task, fusion, params.section_seeds("composite"))
            for fusion in section.fusions}


class CompositePage(Page):
    @functools.cached_property
    def scores(self) -> pd.DataFrame:
        """report.part_scores of every run, with its fusion."""
        return report.composite_scores(self.runs)

    @functools.cached_property
    def table(self) -> pd.DataFrame | None:
        return report.scores_wide(self.scores, keys=["fusion", "part", "protocol"]) if self.runs else None

    @property
    def fusion(self) -> str | None:
        """The fusion the chapter shows in detail: T-S late when it was run, else the first."""
        if (*COMPOSITE, "ts_late") in self.runs:
            return "ts_late"
        return next((fusion for _, _, fusion in self.runs), None)

    @property
    def shown(self) -> pd.DataFrame:
        return self.scores[self.scores.fusion == self.fusion]

    def summary(self) -> str:
        return composite_sentence(self.shown, self.fusion) if self.runs else NOT_CONFIGURED

    def truths(self) -> list[Truth]:
        """The main results' planted truth on the composite: the shown fusion above chance (1/3)
        on all its clips and on each part's, fixed protocol (the parts' writers plant the same
        movements)."""
        from tsfmicro.chapters.main_results import chance_truth

        if not self.runs:
            return []
        rows = self.shown[(self.shown["protocol"] == "fixed") & (self.shown["metric"] == "uf1")]
        return [chance_truth(row, 1 / len(self.shown_run.class_names),
                             f"{self.fusion} on " + ("the whole composite" if row["part"] == WHOLE else
                                                     f"its {part_name(row['part'])} clips ({row['clips']})"))
                for _, row in rows.iterrows()]

    def caveat(self) -> str:
        return ("These numbers come from SYNTHETIC data (generated faces in the official layouts, a tiny model, "
                "few epochs, a few subjects): they show that every step runs, not how TSFmicro does on the real "
                "MEGC2019 composite; the published values beside them were measured on the real datasets and "
                "cannot be compared with them." if self.study.source == "SYNTHETIC" and self.runs else "")

    @functools.cached_property
    def field(self) -> pd.DataFrame:
        return reported.field_reported()

    @property
    def field_table(self) -> pd.DataFrame | None:
        method = f"TSFmicro ({self.fusion}, this book)"
        return field_table(self.shown, self.field, method) if self.runs else None

    def selection_effect(self) -> str:
        return selection_effect_sentence(self.field) if self.runs else ""

    @property
    def shown_run(self) -> Run | None:
        """The run of the fusion shown in detail (None without runs)."""
        return self.runs[(*COMPOSITE, self.fusion)] if self.runs else None

    def confusions(self) -> dict:
        """part -> confusion matrix of the shown fusion's run (fixed protocol); {} without runs."""
        return report.part_confusions(self.shown_run, "fixed") if self.runs else {}


# ----------------------------------------------------------------------------- tables and sentences
OUR_SELECTION = {"fixed": ("last epoch (fixed protocol; no selection)", False),
                 "oracle": ("best epoch per subject on its test data (oracle protocol)", True)}


def field_table(ours: pd.DataFrame, field: pd.DataFrame, method: str, digits: int = 1) -> pd.DataFrame:
    """Our composite scores (``ours``: :func:`part_scores` of a composite run) beside the field's
    published ones (``field``: tsfmicro.reported.field_reported()): one row per method and epoch
    selection, UF1 of the composite and of each part and the composite's UAR in percent, whether
    the selection looks at the test subject's own clips, and the source. Ours carry their
    interval; a value a source does not give is "n/a"."""
    from tsfmicro.reported import FIELD_PARTS, format_value

    def columns(value_of) -> dict:
        row = {f"{part_name(part)} UF1 %": value_of(part, "uf1") for part in FIELD_PARTS}
        row["composite UAR %"] = value_of(WHOLE, "uar")
        return row

    rows = []
    for protocol in [p for p in PROTOCOLS if p in set(ours["protocol"])]:
        mine = ours[ours["protocol"] == protocol].set_index(["part", "metric"])

        def ours_value(part, metric, mine=mine):
            key = (part, metric)
            if key not in mine.index:
                return "n/a"
            return report.format_row(mine.loc[key], digits)

        selection, on_test = OUR_SELECTION[protocol]
        rows.append({"method": method, "selection": selection, "selects on test": on_test, **columns(ours_value),
                     "source": "this book (tsfmicro), runs of these parameters"})
    for (name, selection), group in field.groupby(["method", "selection"], sort=False):
        values = group.set_index(["part", "metric"])["value"]

        def field_value(part, metric, values=values):
            return format_value(values.get((part, metric), float("nan")))

        rows.append({"method": name, "selection": selection, "selects on test": bool(group["selects_on_test"].iloc[0]),
                     **columns(field_value), "source": "; ".join(dict.fromkeys(group["source"]))})
    return pd.DataFrame(rows)


def selection_effect_sentence(field: pd.DataFrame) -> str:
    """What test-set epoch selection adds to the same network in the field's own measurements
    (tsfmicro.reported.field_reported: methods measured both ways, composite UF1)."""
    composite = field[(field["part"] == WHOLE) & (field["metric"] == "uf1")]
    effects = []
    for method, rows in composite.groupby("method", sort=False):
        values = rows.set_index("selects_on_test")["value"]
        if {True, False} <= set(values.index):
            effects.append(f"{method}: {values[False]:.2f} % without, {values[True]:.2f} % with "
                           f"({values[True] - values[False]:+.2f} points)")
    if not effects:
        return ""
    return ("Measured on the same network with and without choosing each subject's epoch on its own test "
            "clips, the composite UF1 is " + "; ".join(effects) + ".")


def composite_sentence(parts: pd.DataFrame, fusion: str = "ts_late") -> str:
    """What the composite chapter concludes, from :func:`part_scores` of the composite run."""
    def uf1(part: str, protocol: str) -> float | None:
        hit = parts[(parts["part"] == part) & (parts["protocol"] == protocol) & (parts["metric"] == "uf1")]
        return float(hit["mean"].iloc[0]) if len(hit) else None

    fixed = uf1(WHOLE, "fixed")
    if fixed is None:
        return ""
    by_part = [f"{part_name(part)} {100 * uf1(part, 'fixed'):.1f} %" for part in dict.fromkeys(parts["part"])
               if part != WHOLE and uf1(part, "fixed") is not None]
    text = (f"On the MEGC2019 composite, TSFmicro ({fusion}) reaches UF1 {100 * fixed:.1f} % under the fixed "
            f"protocol" + (f" ({', '.join(by_part)})" if by_part else "") + ".")
    oracle = uf1(WHOLE, "oracle")
    if oracle is not None:
        gain = round(100 * (oracle - fixed), 1)  # the sign at the precision printed
        text += (f" Choosing each subject's epoch on its own test clips (the oracle protocol, as the authors' "
                 f"code does) gives {100 * oracle:.1f} % ({gain:+.1f} points)")
        text += (": an upper bound, not an estimate." if gain > 0 else
                 ": no higher than the fixed protocol on these runs, so the selection gained nothing here." if gain == 0
                 else ": lower than the fixed protocol, which happens when the last epoch beats the epoch each "
                      "subject's few clips picked; the oracle is still no estimate.")
    flags = parts[(parts["protocol"] == "fixed") & (parts["metric"] == "uf1")] if "flag" in parts.columns else parts[:0]
    for _, row in flags[flags["flag"].fillna("") != ""].iterrows():
        text += (f" The fixed-protocol model is degenerate ({row['flag']})." if row["part"] == WHOLE else
                 f" On its {part_name(row['part'])} clips the fixed-protocol model predicts one class ({row['flag']}).")
    return text


CHAPTER = register(Chapter(name="composite", notebook="05_composite", title="MEGC2019 composite", runs=runs,
                           page=CompositePage, section=Section))
