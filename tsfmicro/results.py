"""Reading run directories: a finished run or unit, loaded (what reports, figures and the book read).

A run directory (written by tsfmicro.engine) holds ``config.yaml`` (the request and what it
resolved to), ``provenance.json``, ``predictions.csv`` (one row per test clip and seed, both
protocols), ``curves.csv`` (one row per seed, fold and epoch), ``metrics.json`` (written last: its
presence marks the directory finished) and, in a unit, ``weights/<fold>.pt``: the final weights of
each fold, kept for a request's first seed. Written since issue 19: ``excluded.csv`` (the annotation
rows left out, with their reason) and ``checksums.json`` (each file as written, just before
metrics.json; a file damaged later makes load_run raise DamagedRun naming it). Reading needs none
of the training code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from tsfmicro import _io
from tsfmicro._checksums import damage
from tsfmicro.options import OPTIONS

if TYPE_CHECKING:  # torch is imported only to load fold weights: a notebook that only reads
    import torch   # runs starts about 2.5 s of CPU sooner without it (15 kernels in `make book`)

_NONE = object()  # a value no recipe field holds

FILES = ("config.yaml", "provenance.json", "predictions.csv", "curves.csv", "metrics.json")


@dataclass
class Run:
    """A finished run or unit directory, loaded. Every table names its protocol in its columns."""

    path: Path
    config: dict  # config.yaml: the request plus what it resolved to (recipe, device, data, units)
    predictions: pd.DataFrame  # one row per test clip and seed
    metrics: dict  # metrics.json, see tsfmicro.metrics.summarize
    curves: pd.DataFrame  # one row per seed, fold and epoch
    provenance: dict
    _models: dict = field(default_factory=dict, repr=False)

    @property
    def class_names(self) -> list[str]:
        return list(self.config["class_names"])

    @property
    def options(self) -> dict:
        """The options that make this run differ from its parameters' default run (a chapter's
        variant, e.g. ``{"temporal_branch": "conv"}``, ``{"loss": "focal"}``); {} for none.

        Read from config.yaml's ``resolved`` (the run key's identity), where each variant option
        (tsfmicro.options, ``variant``) is recorded only when it is not the default: at the top, or
        inside the recipe. The split's options are left out: the run's directory name says them.
        A network's own recipe (e.g. HTNet's unshuffled epochs, tsfmicro.model.networks) is not a
        variant: its values are left out too."""
        from tsfmicro.model.registry import MODELS

        resolved = self.config.get("resolved", {})
        variants = [row for row in OPTIONS if row.variant and row.owner != "split"]
        options = {row.name: resolved[row.name] for row in variants if row.owner != "recipe" and row.name in resolved}
        recipe = resolved.get("recipe", {})
        entry = MODELS.get(resolved.get("arch"))
        own = entry.recipes.get(recipe.get("name"), {}) if entry is not None else {}
        options |= {row.name: recipe[row.name] for row in variants if row.owner == "recipe"
                    and row.name in recipe and recipe[row.name] != own.get(row.name, _NONE)}
        return options

    def fold_model(self, subject: str) -> torch.nn.Module:
        """The model trained without ``subject`` (its final weights), in eval mode, on the CPU."""
        subject = str(subject)
        folds = self.predictions.loc[self.predictions["subject"].astype(str) == subject, "fold"].unique()
        if len(folds) == 0:
            raise KeyError(f"subject {subject!r} is not in run {self.path}")
        fold = str(folds[0])
        for unit in self.config["units"]:
            path = fold_weights_path(self.path / unit / "weights", fold)
            if path.exists():
                return self._load_model(path, fold)
        raise FileNotFoundError(
            f"no saved weights for fold {fold} in {self.path}: weights are kept for the first seed of the "
            "request that trained a unit; train a request whose first seed is this run's first seed"
        )

    def _load_model(self, path: Path, fold: str) -> torch.nn.Module:
        from tsfmicro.model import model_from_config

        state = _io.load_tagged(path, f"weights:{fold}")
        model = model_from_config(self.config, len(self.class_names))
        model.load_state_dict(state["model"])
        return model.eval()


class DamagedRun(ValueError):
    """A finished run directory whose files differ from what was recorded when it was written."""


# Beside a run: the annotation rows it left out (tsfmicro.engine.excluded writes it).
EXCLUDED = "excluded.csv"


def excluded_kinds(excluded: pd.DataFrame) -> pd.Series:
    """Why each left-out row is out: "not in the task" (tsfmicro.data.annotations.select_task
    words it "label 'fear' is not in casme2 5class"), "errata: owners" (the owners' errata, when
    chosen) or "unusable" (everything the readers and the face cropper could not use)."""
    reasons = excluded["reason"].astype(str) if "reason" in excluded else pd.Series([], dtype=str)
    kinds = pd.Series("unusable", index=reasons.index)
    kinds[reasons.str.startswith("label ") & reasons.str.contains(" is not in ", regex=False)] = "not in the task"
    kinds[reasons.str.endswith("errata: owners)")] = "errata: owners"
    return kinds


def excluded_line(run: "Run") -> str | None:
    """``14 of 21 rows excluded (12 unusable, 2 not in the task): see <run>/excluded.csv``; None
    when the run left out nothing, or was written before the report was kept."""
    path = run.path / EXCLUDED
    if not path.is_file():
        return None
    excluded = pd.read_csv(path, dtype=str)
    if excluded.empty:
        return None
    seeds = run.predictions["seed"].nunique() or 1
    total = len(run.predictions) // seeds + len(excluded)
    counts = excluded_kinds(excluded).value_counts()
    parts = ", ".join(f"{counts[kind]} {kind}" for kind in ("unusable", "not in the task", "errata: owners")
                      if kind in counts)
    return f"{len(excluded)} of {total} rows excluded ({parts}): see {path}"


def is_finished(path: Path) -> bool:
    return (Path(path) / "metrics.json").exists()


def runs_in(path: str | Path) -> list[Path]:
    """``path`` when it is a run (or not a folder of runs); else the finished runs directly inside
    it, in name order (``report runs/``)."""
    path = Path(path)
    if is_finished(path) or not path.is_dir():
        return [path]
    found = sorted(child for child in path.iterdir() if child.is_dir() and is_finished(child))
    return found or [path]


def load_run(path: str | Path) -> Run:
    """Load a finished run or unit directory (FileNotFoundError if it is unfinished or missing)."""
    path = Path(path)
    missing = [name for name in FILES if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(f"{path} is not a finished run directory (missing {', '.join(missing)})")
    problems = damage(path)
    if problems:
        raise DamagedRun(f"run {path} is damaged: {'; '.join(problems)}. Its fold results are kept: run the same "
                         "`tsfmicro run` or `tsfmicro train` command to assemble it again, without training")
    config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
    predictions = pd.read_csv(path / "predictions.csv", dtype={"fold": str, "subject": str, "clip_id": str})
    return Run(
        path=path,
        config=config,
        predictions=predictions,
        metrics=_read_json(path / "metrics.json"),
        curves=pd.read_csv(path / "curves.csv", dtype={"fold": str}),
        provenance=_read_json(path / "provenance.json"),
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # a run written before checksums were recorded, then damaged
        raise DamagedRun(f"{path} is not valid JSON ({error}); its fold results are kept: delete {path.parent / 'metrics.json'} "
                         "and run the same `tsfmicro run` or `tsfmicro train` command to assemble it again") from None


def file_stem(fold_name: str) -> str:
    """A fold's name as a file name (subject ids such as "casme2/sub01" hold a slash)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(fold_name))


def fold_weights_path(weights_dir: Path, fold_name: str) -> Path:
    return Path(weights_dir) / f"{file_stem(fold_name)}.pt"


def first_seed_predictions(run: Run) -> pd.DataFrame:
    """The run's predictions of its first seed (the one whose fold weights are kept)."""
    seed = int(run.config["seeds"][0])
    return run.predictions[run.predictions["seed"] == seed].reset_index(drop=True)
