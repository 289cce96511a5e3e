"""Figures and tables of the book (seaborn / matplotlib / pandas Styler).

Every function takes the data to show and a ``label``: one line saying data source,
protocol and seeds (``Study.label(protocol)``), printed at the foot of each figure and
in the caption of each table, so a figure copied out of the book still says where it
comes from. Nothing here computes a metric: the numbers come from tsfmicro.metrics and
tsfmicro.report through the notebooks.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = "colorblind"


def setup() -> None:
    """One look for every figure (call once per notebook); in a notebook, figures are shown
    with their numbered caption (:func:`number_exhibits`)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({"figure.dpi": 96, "savefig.dpi": 96, "figure.autolayout": False})
    _show_captions()


def _show_captions() -> None:
    """In IPython, figures also carry text/html: the PNG and its numbered caption (the book
    prefers text/html). Done again for every figure (:func:`footer`): the inline backend, set up
    when the first figure is made, removes every formatter of Figure but its own."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook dependencies
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(plt.Figure, _figure_html)


# ------------------------------------------------------------------------- numbering
@dataclass
class Exhibits:
    """The page's numbering: ``Figure 1.2``, ``Table 1.3`` (chapter number, then the order shown),
    what each re-derives from the paper (``paper``: the chapter's, e.g. "the paper's fusion
    ablation table", or "beyond the paper") and the command that regenerates the page."""
    chapter: int
    paper: str
    command: str
    counts: dict = field(default_factory=dict)

    def next(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{kind} {self.chapter}.{self.counts[kind]}"

    def caption(self, kind: str, text: str = "", paper: str | None = None) -> str:
        """``<b>Figure 1.2</b> text (re-derives ...; regenerate: `command`)`` as HTML."""
        number = self.next(kind)
        source = paper or self.paper
        source = source if source.startswith("beyond") else f"re-derives {source}"
        return (f"<b class='tsfmicro-number'>{number}</b> {text}"
                f"<br><small class='tsfmicro-regenerate' style='color:#555'>{html.escape(source)}; "
                f"regenerate: <code style='white-space:normal;word-break:break-all'>"
                f"{html.escape(self.command)}</code></small>")


_EXHIBITS: Exhibits | None = None


def number_exhibits(chapter: int, paper: str, command: str) -> Exhibits:
    """Number this notebook's figures and tables from now on (tsfmicro.study does it when the
    notebook asks for its chapter; outside a chapter nothing is numbered)."""
    global _EXHIBITS
    _EXHIBITS = Exhibits(chapter, paper, command)
    return _EXHIBITS


def _figure_html(fig: plt.Figure) -> str | None:
    """A figure as an HTML ``<figure>``: the PNG, then its numbered caption (numbered the first
    time it is shown)."""
    if _EXHIBITS is None:
        return None  # the PNG alone, as IPython shows it
    import base64
    import io

    caption = getattr(fig, "_tsfmicro_caption", None)
    if caption is None:
        caption = _EXHIBITS.caption("Figure", html.escape(_figure_text(fig)),
                                    getattr(fig, "_tsfmicro_paper", None))
        fig._tsfmicro_caption = caption
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"<figure class='tsfmicro-figure' style='margin:0 0 1em 0'>"
            f"<img src='data:image/png;base64,{data}' style='max-width:100%;height:auto' "
            f"alt='{html.escape(_plain(caption))}'>"
            f"<figcaption style='text-align:left;font-size:0.9em'>{caption}</figcaption></figure>")


def _plain(markup: str) -> str:
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _figure_text(fig: plt.Figure) -> str:
    """The caption's words: given by :func:`describe`, else the figure's title, else its panels'."""
    text = getattr(fig, "_tsfmicro_text", "")
    if text:
        return text
    if fig._suptitle is not None and fig._suptitle.get_text():
        return fig._suptitle.get_text()
    titles = list(dict.fromkeys(ax.get_title() for ax in fig.axes if ax.get_title()))
    return "; ".join(titles[:4]) + ("; ..." if len(titles) > 4 else "")


def describe(fig: plt.Figure, text: str, paper: str | None = None) -> plt.Figure:
    """Give ``fig`` the text of its caption (and what it re-derives, when not the chapter's)."""
    fig._tsfmicro_text = text
    if paper:
        fig._tsfmicro_paper = paper
    return fig


def footer(fig: plt.Figure, label: str) -> plt.Figure:
    """Write ``label`` (data source, protocol, seeds) at the bottom of ``fig``."""
    # the book scales a figure to its ~760 px column: a wide figure's footer is set larger so
    # that it still reads at 9 pt or more there
    size = max(9.0, 9.0 * fig.get_figwidth() * fig.dpi / 760)
    fig.text(0.01, 0.005, label, ha="left", va="bottom", fontsize=size, color="#444444")
    # room for the footer line below the panels (its height in inches over the figure's)
    fig.tight_layout(rect=(0, max(0.04, 1.8 * size / 72 / fig.get_figheight()), 1, 1))
    _show_captions()
    return fig


def table(frame: pd.DataFrame, label: str, caption: str = "", percent: Sequence[str] = (),
          digits: int = 1, compact: bool = True, paper: str | None = None):
    """A pandas Styler for the book: ``caption``, then the ``label`` line (data, protocol,
    seeds). Columns in ``percent`` are fractions shown as percent; missing values show as
    "n/a"; a "mean [low, high]" cell shows its interval small, under the mean. With
    ``compact``, columns holding one value for every row move into the caption. ``paper``: what
    the table re-derives when not the chapter's (its numbered caption says so)."""
    frame = frame.copy()
    constant = []
    if compact and len(frame) > 1:
        constant = [c for c in frame.columns if frame[c].astype(str).nunique() == 1]
        constant = [c for c in constant if c not in percent]
    fixed_text = " · ".join(f"{c}: {frame[c].iloc[0]}" for c in constant)
    frame = frame.drop(columns=constant)
    formats = {column: (lambda v, d=digits: "n/a" if _missing(v) else f"{100 * v:.{d}f}")
               for column in percent if column in frame.columns}
    for column in frame.columns:
        if column not in formats and not pd.api.types.is_numeric_dtype(frame[column]):
            formats[column] = _interval_cell
    styler = frame.style.format(formats, na_rep="n/a", precision=3).hide(axis="index")
    styler = styler.relabel_index([f"{c} %" if c in percent else str(c) for c in frame.columns],
                                  axis="columns")
    if _EXHIBITS is not None:
        caption = _EXHIBITS.caption("Table", caption, paper)
    lines = [caption] if caption else []
    if fixed_text:
        lines.append(fixed_text)
    lines.append(f"<small>{label}</small>")
    return styler.set_caption("<br>".join(lines)).set_table_styles([
        {"selector": "caption", "props": "caption-side: top; text-align: left; color: #333;"},
        {"selector": "td", "props": "padding: 2px 8px; vertical-align: top;"},
        {"selector": "th", "props": "padding: 2px 8px;"},
    ])


TRUTHS_SOURCE = "beyond the paper (planted vs recovered)"


def truths(frame: pd.DataFrame, caption: str, label: str):
    """A page's planted-vs-recovered table (tsfmicro.chapters.Page.truths_table) under its one-line
    ``caption``, or the caption alone when the page has no truth to show."""
    if not len(frame):
        print(caption)
        return None
    return table(frame, label, caption, compact=False, paper=TRUTHS_SOURCE)


def _interval_cell(value) -> str:
    """'18.2 [17.0, 19.4]' -> the mean, and the interval small on a second line."""
    text = "n/a" if _missing(value) else str(value)
    if " [" in text and text.endswith("]"):
        mean, interval = text.split(" [", 1)
        return f"{mean}<br><small style='color:#555;white-space:nowrap'>[{interval}</small>"
    return text


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# ------------------------------------------------------------------------- datasets
def class_counts(samples: pd.DataFrame, label: str, column: str = "class_name") -> plt.Figure:
    """Clips per class, one panel per dataset/task (``samples`` has dataset, task, ``column``)."""
    groups = list(samples.groupby(["dataset", "task"], sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    for ax, ((dataset, task), part) in zip(axes[0], groups):
        part = part.sort_values("class_index") if "class_index" in part else part
        counts = part[column].astype(str).value_counts(sort=False)  # in class order
        sns.barplot(x=counts.index.astype(str), y=counts.values, ax=ax, color=sns.color_palette(PALETTE)[0])
        ax.set_title(f"{dataset} {task}: {len(part)} clips")
        ax.set_xlabel("")
        ax.set_ylabel("clips")
        ax.tick_params(axis="x", rotation=40)
    return footer(fig, label)


def clips_per_subject(samples: pd.DataFrame, label: str, column: str = "class_name") -> plt.Figure:
    """Heatmap of clips per subject and class, one panel per dataset/task."""
    groups = list(samples.groupby(["dataset", "task"], sort=False))
    # tall enough for one readable row per subject (labels overlapped at a fixed height)
    subjects = max(part["subject"].nunique() for _, part in groups) if groups else 1
    fig, axes = plt.subplots(1, len(groups), figsize=(4.4 * len(groups), max(3.6, 0.24 * subjects + 1.6)),
                             squeeze=False)
    for ax, ((dataset, task), part) in zip(axes[0], groups):
        part = part.sort_values("class_index") if "class_index" in part else part
        order = list(dict.fromkeys(part[column].astype(str)))
        grid = pd.crosstab(part["subject"].astype(str), part[column].astype(str)).reindex(columns=order)
        sns.heatmap(grid, annot=True, fmt="d", cbar=False, cmap="Blues", ax=ax, annot_kws={"fontsize": 8},
                    yticklabels=True)
        ax.set_title(f"{dataset} {task}: clips per subject", fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("subject")
        ax.tick_params(axis="x", rotation=40, labelsize=8)
        ax.tick_params(axis="y", rotation=0, labelsize=8)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    return footer(fig, label)


def example_crops(onset: np.ndarray, apex: np.ndarray, titles: Sequence[str], label: str,
                  gain: float = 4.0) -> plt.Figure:
    """One column per clip: onset, apex and the absolute difference ``abs(apex - onset)``
    (amplified by ``gain``) for uint8 crops ``(N, H, W, 3)``."""
    columns = len(onset)
    fig, axes = plt.subplots(3, columns, figsize=(1.75 * columns + 0.6, 6.0), squeeze=False)
    for column in range(columns):
        difference = np.abs(apex[column].astype(np.int16) - onset[column].astype(np.int16))
        difference = np.clip(difference.mean(axis=-1) * gain, 0, 255).astype(np.uint8)
        panels = [(onset[column], "onset", None), (apex[column], "apex", None),
                  (difference, f"|apex − onset| × {gain:g}", "magma")]
        for row, (image, name, cmap) in enumerate(panels):
            ax = axes[row][column]
            ax.imshow(image, cmap=cmap, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if column == 0:
                ax.set_ylabel(name, fontsize=9)
        axes[0][column].set_title(titles[column], fontsize=8.5)
    # the grid's own heading, so the clip labels above its columns read as this grid's
    fig.suptitle(label.split(" | ")[0] + ": one clip per class", fontsize=11, x=0.01, ha="left")
    return footer(fig, label)


def flow_maps(onset: np.ndarray, apex: np.ndarray, flow: np.ndarray, titles: Sequence[str],
              label: str) -> plt.Figure:
    """One column per clip: its onset and apex crops (uint8 ``(N, H, W, 3)``) and the three maps of
    the flow input (``(N, 3, 28, 28)`` in [0, 1]: u, v, strain; tsfmicro.data.flow), as the
    baseline networks receive them (each map scaled to [0, 1] on its own, so grey is not zero
    motion: the colour bar is the map's own range)."""
    columns = len(onset)
    fig, axes = plt.subplots(5, columns, figsize=(1.75 * columns + 0.9, 9.0), squeeze=False)
    rows = [("onset", None), ("apex", None), ("u (horizontal)", "coolwarm"), ("v (vertical)", "coolwarm"),
            ("strain", "magma")]
    for column in range(columns):
        images = [onset[column], apex[column], *flow[column]]
        for row, (image, (name, cmap)) in enumerate(zip(images, rows)):
            ax = axes[row][column]
            shown = ax.imshow(image, cmap=cmap, vmin=0, vmax=255 if cmap is None else 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if column == 0:
                ax.set_ylabel(name, fontsize=9)
            if cmap is not None and column == columns - 1:
                fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, ticks=[0, 1])
        axes[0][column].set_title(titles[column], fontsize=8.5)
    fig.suptitle(label.split(" | ")[0] + ": the flow input (TV-L1 onset → apex, 28 × 28)", fontsize=11,
                 x=0.01, ha="left")
    return footer(fig, label)


# ------------------------------------------------------------------------- results
def _intervals(ax, positions, low, high, **style) -> None:
    """Each interval [low, high] as a capped vertical line, wherever the point estimate lies: a
    percentile bootstrap interval need not hold the estimate (UF1 over resampled subjects is
    skewed), and an error bar measured from the estimate would then be negative (matplotlib
    refuses it) or, clipped at 0, hide where the interval really lies. Missing values: no line."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    ax.errorbar(positions, (low + high) / 2, yerr=(high - low) / 2, fmt="none", capsize=3, **style)


def metric_bars(summary: pd.DataFrame, x: str, label: str, hue: str = "protocol",
                metrics: Sequence[str] = ("accuracy", "uf1", "uar"),
                reported: pd.DataFrame | None = None, chance: dict[str, float] | None = None) -> plt.Figure:
    """Bars of mean score with their interval over seeds, one panel per metric.

    ``summary`` has columns ``x``, ``hue``, ``metric``, ``mean``, ``low``, ``high``
    (fractions). ``reported`` (optional: ``x``, ``metric``, ``value`` in percent) adds the
    paper's values as black diamonds beside the oracle bars (the paper's protocol); missing ones
    are simply absent. ``chance`` draws a dashed line: a fraction for every panel, or metric ->
    fraction, or ``x`` group -> fraction (tasks with different numbers of classes).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.8), squeeze=False,
                             sharey=True)
    order = list(dict.fromkeys(summary[x]))
    hues = list(dict.fromkeys(summary[hue]))
    colours = sns.color_palette(PALETTE, len(hues))
    width = 0.8 / max(len(hues), 1)
    for ax, metric in zip(axes[0], metrics):
        part = summary[summary["metric"] == metric]
        for index, name in enumerate(hues):
            rows = part[part[hue] == name].set_index(x).reindex(order)
            positions = np.arange(len(order)) + (index - (len(hues) - 1) / 2) * width
            means = 100 * rows["mean"].to_numpy(dtype=float)
            low = 100 * rows["low"].to_numpy(dtype=float)
            high = 100 * rows["high"].to_numpy(dtype=float)
            ax.bar(positions, means, width=width, color=colours[index], label=str(name))
            _intervals(ax, positions, low, high, ecolor="#222222", lw=1)
        if reported is not None and len(reported):
            paper = reported[reported["metric"] == metric].set_index(x).reindex(order)["value"]
            shown = paper.notna().to_numpy()
            # on the oracle bar when there is one (the paper's values are oracle-protocol values)
            offset = ((hues.index("oracle") - (len(hues) - 1) / 2) * width if "oracle" in hues else 0.0)
            if shown.any():
                ax.scatter(np.arange(len(order))[shown] + offset, paper.to_numpy(dtype=float)[shown],
                           marker="D", color="black", zorder=5, label="paper (reported, oracle)")
        _chance_line(ax, chance, metric, order)
        ax.set_xticks(np.arange(len(order)))
        ax.set_xticklabels(order, rotation=35, ha="right")
        ax.set_title(metric.upper() if metric != "accuracy" else "ACC")
        ax.set_ylabel("% (mean and 95 % interval)")
        ax.set_ylim(0, 105)
    legend = {}
    for ax in axes[0]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(name, handle)
    # beside the panels, never over a bar or its interval
    axes[0][-1].legend(legend.values(), legend.keys(), fontsize=8, loc="upper left",
                       bbox_to_anchor=(1.01, 1.0), frameon=False)
    return footer(fig, label)


def _chance_line(ax, chance, metric: str, order: list) -> None:
    """A dashed chance line on a score panel (see :func:`metric_bars`)."""
    if chance is None:
        return
    if isinstance(chance, (int, float)):
        ax.axhline(100 * chance, ls="--", color="#444444", lw=1, zorder=4, label="chance (1 / classes)")
    elif metric in chance:
        ax.axhline(100 * chance[metric], ls="--", color="#444444", lw=1, zorder=4, label="chance (1 / classes)")
    elif any(name in chance for name in order):
        for position, name in enumerate(order):
            if name in chance:
                ax.hlines(100 * chance[name], position - 0.45, position + 0.45, linestyles="--",
                          colors="#444444", lw=1, zorder=4, label="chance (1 / classes)")


def confusion(matrix: np.ndarray, class_names: Sequence[str], title: str, label: str) -> plt.Figure:
    """Counts and row-normalised (recall per true class) heatmaps side by side."""
    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    size = max(3.6, 0.75 * len(class_names) + 1.8)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 0.6, size))
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes[0],
                xticklabels=class_names, yticklabels=class_names)
    axes[0].set_title("counts")
    sns.heatmap(normalised, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False,
                ax=axes[1], xticklabels=class_names, yticklabels=class_names)
    axes[1].set_title("row-normalised (recall per class)")
    for ax in axes:
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.tick_params(axis="x", rotation=40)
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(title, fontsize=11)
    return footer(fig, label)


def transfer_heatmap(matrix: pd.DataFrame, label: str) -> plt.Figure:
    """Cross-dataset scores: rows = trained on, columns = tested on (datasets by their display
    names), each cell the mean and its interval in percent; the diagonal (each dataset's own
    LOSO) is outlined and marked.

    ``matrix``: tsfmicro.chapters.cross_dataset.cross_dataset_matrix (columns train, test, own, metric,
    protocol, mean, low, high).
    """
    from tsfmicro.data.registry import dataset_info

    order = list(dict.fromkeys([*matrix["train"], *matrix["test"]]))
    cells = matrix.set_index(["train", "test"])
    values = np.full((len(order), len(order)), np.nan)
    text = np.full((len(order), len(order)), "", dtype=object)
    for (train, test), row in cells.iterrows():
        i, j = order.index(train), order.index(test)
        values[i, j] = 100 * row["mean"]
        interval = "" if pd.isna(row["low"]) or pd.isna(row["high"]) else \
            f"\n[{100 * row['low']:.0f}, {100 * row['high']:.0f}]"
        text[i, j] = f"{100 * row['mean']:.1f}{interval}" + ("\nLOSO" if row["own"] else "")
    size = 1.6 * len(order) + 2.2
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    labels = [dataset_info(d).display_name for d in order]
    sns.heatmap(values, annot=text, fmt="", cmap="viridis", vmin=0, vmax=100, ax=ax, square=True,
                xticklabels=labels, yticklabels=labels, cbar_kws={"label": f"{matrix['metric'].iloc[0].upper()} %"},
                annot_kws={"fontsize": 9})
    ax.grid(False)
    for k in range(len(order)):  # the diagonal is a different evaluation (LOSO): outline it
        ax.add_patch(plt.Rectangle((k, k), 1, 1, fill=False, edgecolor="white", lw=2.5))
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.tick_params(axis="x", rotation=0)
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(f"{matrix['metric'].iloc[0].upper()}, protocol {matrix['protocol'].iloc[0]}", fontsize=11)
    return footer(fig, label)


def learning_curves(curves: pd.DataFrame, label: str, x: str = "epoch",
                    columns: Sequence[str] = ("train_loss", "test_accuracy")) -> plt.Figure:
    """Mean over folds (and seeds) of per-epoch curves, one panel per column present."""
    columns = [column for column in columns if column in curves.columns]
    fig, axes = plt.subplots(1, max(len(columns), 1), figsize=(4.4 * max(len(columns), 1), 3.2),
                             squeeze=False)
    for ax, column in zip(axes[0], columns):
        sns.lineplot(data=curves, x=x, y=column, ax=ax, errorbar=("pi", 100))
        ax.set_title(column.replace("_", " "))
    return footer(fig, label)


def training_curves(curves: dict[str, pd.DataFrame], label: str) -> plt.Figure:
    """Per run (one row each, ``curves``: name -> the run's curves.csv): training loss and the
    held-out subject's UF1 per epoch, mean over folds and seeds with a band from the lowest to
    the highest fold; the epoch the oracle protocol keeps for each fold (its best held-out F1)
    marked with a dot, the fixed protocol's (the last) with a dashed line."""
    names = list(curves)
    fig, axes = plt.subplots(max(len(names), 1), 2, figsize=(10.5, 2.9 * max(len(names), 1)),
                             squeeze=False)
    colours = sns.color_palette(PALETTE)
    for row, name in enumerate(names):
        table = curves[name]
        for ax, column, title in ((axes[row][0], "train_loss", "training loss"),
                                  (axes[row][1], "test_f1", "held-out subject's UF1")):
            if column not in table:
                ax.set_visible(False)
                continue
            by_epoch = table.groupby("epoch")[column]
            mean, low, high = by_epoch.mean(), by_epoch.min(), by_epoch.max()
            ax.fill_between(mean.index, low, high, color=colours[0], alpha=0.2, linewidth=0,
                            label="range over folds")
            ax.plot(mean.index, mean.values, color=colours[0], marker="o", markersize=3,
                    label="mean over folds")
            last = int(table["epoch"].max())
            ax.axvline(last, color="#555555", linestyle="--", linewidth=1, label="fixed: last epoch")
            if column == "test_f1":
                best = table.loc[_oracle_rows(table)]
                ax.scatter(best["epoch"], best["test_f1"], s=18, color=colours[3], zorder=3,
                           label="oracle: each fold's chosen epoch")
                ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{name}: {title}", fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel("")
            ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        if row == 0 and "test_f1" in table:
            axes[0][1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return footer(fig, label)


def _oracle_rows(table: pd.DataFrame) -> list:
    """The row of each seed and fold whose held-out F1 is the highest, the last on ties (the
    engine's rule, tsfmicro.engine.loso.FoldOutcome.oracle_epoch)."""
    rows = []
    for _, part in table.groupby(["seed", "fold"], sort=False):
        part = part.sort_values("epoch")
        rows.append(part["test_f1"][::-1].idxmax())
    return rows


def gradcam_grid(panels: list[dict], label: str) -> plt.Figure:
    """One row per example: difference frame + temporal CAM, onset frame + spatial CAM.

    Each panel dict: ``title``, ``difference`` and ``onset`` (uint8 (H, W, 3)), and
    ``temporal`` / ``spatial`` CAMs in [0, 1] (H, W) or None when the variant lacks that
    branch. A CAM that is zero everywhere (no positive gradient) is written as such
    rather than drawn as a flat colour.
    """
    rows = len(panels)
    fig, axes = plt.subplots(rows, 4, figsize=(10.5, 2.2 * rows + 0.5), squeeze=False)
    for row, panel in enumerate(panels):
        views = [(panel["difference"], None, "difference (apex − onset)", False),
                 (panel["difference"], panel.get("temporal"), "temporal CAM", True),
                 (panel["onset"], None, "onset", False),
                 (panel["onset"], panel.get("spatial"), "spatial CAM", True)]
        for ax, (image, cam, name, is_cam) in zip(axes[row], views):
            ax.imshow(image)
            if is_cam and cam is None:
                ax.text(0.5, 0.5, "no such branch", transform=ax.transAxes, ha="center",
                        va="center", fontsize=8, color="white", backgroundcolor="#333333")
            elif is_cam and float(np.max(cam)) <= 1e-6:
                ax.text(0.5, 0.5, "CAM is zero", transform=ax.transAxes, ha="center",
                        va="center", fontsize=8, color="white", backgroundcolor="#333333")
            elif is_cam:
                ax.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1,
                          extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if row == 0:
                ax.set_title(name, fontsize=10)
        axes[row][0].set_ylabel(panel["title"], fontsize=8.5, rotation=0, ha="right",
                                va="center", labelpad=8)
    footer(fig, label)
    # the CAM scale: each map is divided by its own maximum (0 = no positive evidence)
    fig.subplots_adjust(right=0.9)
    bar = fig.add_axes((0.92, 0.25, 0.015, 0.5))
    fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(0, 1), cmap="jet"), cax=bar)
    bar.set_ylabel("Grad-CAM, scaled to each map's maximum", fontsize=8)
    bar.tick_params(labelsize=8)
    return fig


def attention_grid(panels: list[dict], label: str) -> plt.Figure:
    """One row per example: each branch's Grad-CAM with its peak marked, then the attention of
    the query token at that peak (tsfmicro.attention_maps.attention_panels).

    Each panel dict: ``title``, ``difference`` and ``onset`` (uint8 (H, W, 3)), and per branch
    (``temporal``, ``spatial``) the CAM (H, W), the ``<branch>_query`` grid cell (row, column)
    and the ``<branch>_attention`` (g, g) map summing to 1, or None when the variant has no such
    branch or attention, and ``grid`` (g). Attention maps are drawn over the whole image, one grid
    cell per block, scaled to their own maximum (its value against uniform attention, 1/g², is
    written in the corner); a white cross marks the query cell.
    """
    rows = len(panels)
    fig, axes = plt.subplots(rows, 4, figsize=(10.5, 2.2 * rows + 0.5), squeeze=False)
    for row, panel in enumerate(panels):
        for column, (branch, image) in enumerate((("temporal", panel["difference"]), ("spatial", panel["onset"]))):
            cam, attention, query = panel.get(branch), panel.get(f"{branch}_attention"), panel.get(f"{branch}_query")
            height, width = image.shape[:2]
            extent = (-0.5, width - 0.5, height - 0.5, -0.5)
            for ax, (name, overlay) in zip(axes[row][2 * column:2 * column + 2],
                                           ((f"{branch} CAM", cam), (f"{branch} attention", attention))):
                ax.imshow(image)
                if overlay is None:
                    ax.text(0.5, 0.5, "no such branch" if cam is None else "no attention", transform=ax.transAxes,
                            ha="center", va="center", fontsize=8, color="white", backgroundcolor="#333333")
                else:
                    top = float(np.max(overlay))
                    ax.imshow(overlay / top if top > 0 else overlay, cmap="jet", alpha=0.45, vmin=0, vmax=1,
                              extent=extent, interpolation="nearest")
                    if overlay is attention:  # how peaked: its maximum against uniform attention
                        ax.text(0.02, 0.02, f"max {top * attention.size:.1f}× uniform", transform=ax.transAxes,
                                fontsize=7, color="white", backgroundcolor="#333333", va="bottom")
                    if query is not None:
                        grid = panel["grid"]
                        y, x = ((query[0] + 0.5) * height / grid - 0.5, (query[1] + 0.5) * width / grid - 0.5)
                        ax.plot([x], [y], marker="+", markersize=12, mew=2, color="white")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if row == 0:
                    ax.set_title(name, fontsize=10)
        axes[row][0].set_ylabel(panel["title"], fontsize=8.5, rotation=0, ha="right", va="center", labelpad=8)
    return footer(fig, label)


# ------------------------------------------------------------------------- annotation sensitivity
def shift_curves(scores: pd.DataFrame, label: str, chance: float | None = None) -> plt.Figure:
    """UF1 and UAR against the shift of the apex (left) and of the onset (right), with their
    subject-bootstrap 95 % intervals (``scores``: tsfmicro.sensitivity.shift_scores, the shown
    shifts: tsfmicro.sensitivity.moved_shifts); each tick says the median number of frames the
    shift moved the clips and how many clips it moved."""
    kinds = list(dict.fromkeys(scores["kind"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 3.8), squeeze=False, sharey=True)
    colours = sns.color_palette(PALETTE, 2)
    for ax, kind in zip(axes[0], kinds):
        part = scores[scores["kind"] == kind].sort_values("percent")
        positions = np.arange(len(part))
        for offset, (metric, colour) in zip((-0.06, 0.06), zip(("uf1", "uar"), colours)):
            ax.plot(positions + offset, 100 * part[metric].to_numpy(dtype=float), marker="o", color=colour,
                    label=metric.upper())
            _intervals(ax, positions + offset, 100 * part[f"{metric}_low"].to_numpy(dtype=float),
                       100 * part[f"{metric}_high"].to_numpy(dtype=float), ecolor=colour)
        ax.axvline(float(np.flatnonzero(part["percent"].to_numpy() == 0)[0]), color="#888888", lw=1, ls=":")
        if chance is not None:
            ax.axhline(100 * chance, ls="--", color="#888888", lw=1, label="chance (UAR)")
        ax.set_xticks(positions)
        ax.set_xticklabels([f"{p:+g}\n{m:g} fr\n{k}/{n} clips" if p else "0\nannotated"
                            for p, m, k, n in zip(part["percent"], part["median_frames_moved"], part["clips_moved"],
                                                  part["clips"])], fontsize=8)
        ax.set_xlabel(f"{kind} moved (% of onset–offset; median frames; clips moved)")
        ax.set_title(f"{kind} shifts")
        ax.set_ylabel("% (95 % subject bootstrap)")
        ax.set_ylim(0, 105)
    axes[0][-1].legend(fontsize=8, loc="upper right")
    return footer(fig, label)


def apex_distance_histogram(distances: pd.DataFrame, label: str) -> plt.Figure:
    """Histograms of automatic minus annotated apex, in frames and in % of the onset-offset
    length (``distances``: tsfmicro.sensitivity.apex_distances)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    frames = distances["distance_frames"].to_numpy(dtype=int)
    bins = np.arange(frames.min(initial=0) - 0.5, frames.max(initial=0) + 1.5)
    colour = sns.color_palette(PALETTE)[0]
    axes[0].hist(frames, bins=bins if len(bins) <= 80 else 40, color=colour)
    axes[0].xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axes[0].set_xlabel("automatic − annotated apex (frames)")
    # 5 % bins centred on whole multiples of 5 %, so that 0 (the annotated frame) has a bin of its own
    axes[1].hist(distances["distance_percent"].to_numpy(dtype=float), bins=np.arange(-102.5, 103, 5), color=colour)
    axes[1].set_xlabel("automatic − annotated apex (% of onset–offset)")
    for ax in axes:
        ax.axvline(0, color="#888888", lw=1, ls=":")
        ax.set_ylabel("clips")
    fig.suptitle(f"{len(distances)} clips: {int((frames == 0).sum())} with the automatic apex on the annotated frame",
                 fontsize=10)
    return footer(fig, label)


def training_times(plan: pd.DataFrame, label: str) -> plt.Figure:
    """Per training unit (a row of a plan table: tsfmicro.engine.plan.Plan.table), the time it
    trained (summed over its folds) beside the time the plan estimated from the measured
    throughput; units not trained, or never estimated, show no bar."""
    names = [f"{d} {t} {f}{' ' + o if o else ''} s{s}"  # options tell a chapter's variants apart
             for d, t, f, o, s in zip(plan["dataset"], plan["task"], plan["fusion"], plan["options"].fillna(""),
                                      plan["seed"])]
    times = pd.DataFrame({
        "unit": names * 2,
        "seconds": pd.to_numeric(pd.concat([plan["trained_seconds"], plan["estimated_seconds"]]),
                                 errors="coerce").to_numpy(),
        "": ["trained"] * len(plan) + ["estimated"] * len(plan),
    })
    fig, ax = plt.subplots(figsize=(7.5, 0.8 + 0.32 * len(plan)))
    sns.barplot(times, y="unit", x="seconds", hue="", ax=ax, palette=PALETTE, orient="h")
    ax.set_xlabel("seconds (training summed over folds)")
    ax.set_ylabel("")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), title=None, frameon=False)
    return footer(fig, label)


def show(fig: plt.Figure) -> None:
    """Display ``fig`` now and close it (for figures made in a loop)."""
    from IPython.display import display

    display(fig)
    plt.close(fig)


def depth_sweep(uf1: pd.DataFrame, identity: pd.DataFrame, region: pd.DataFrame | None, label: str,
                region_reason: str = "") -> plt.Figure:
    """Three panels against the spatial branch's depth: recognition UF1 (both protocols), the
    identity probe's accuracy per feature with its chance level, and the share of each branch's
    Grad-CAM mass inside the clip's region beside a uniform map's (or why it was not measured).
    ``uf1``: depth, protocol, mean, low, high; ``identity``: depth, features, accuracy, low, high,
    chance; ``region``: depth, branch, share, low, high, uniform (fractions)."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8))

    def lines(ax, frame, by, value, low, high):
        for offset, (name, part) in zip(np.linspace(-0.08, 0.08, max(1, frame[by].nunique())),
                                        frame.groupby(by, sort=False)):
            part = part.sort_values("depth")
            depth = part["depth"].to_numpy(dtype=float) + offset
            (line,) = ax.plot(depth, 100 * part[value].to_numpy(dtype=float), marker="o", label=str(name))
            _intervals(ax, depth, 100 * part[low].to_numpy(dtype=float), 100 * part[high].to_numpy(dtype=float),
                       ecolor=line.get_color())

    lines(axes[0], uf1, "protocol", "mean", "low", "high")
    axes[0].set_title("recognition (LOSO)")
    axes[0].set_ylabel("UF1 % (95 % interval)")
    lines(axes[1], identity, "features", "accuracy", "low", "high")
    chance = identity.groupby("depth")["chance"].first().sort_index()
    axes[1].plot(chance.index, 100 * chance.to_numpy(), ls="--", color="#888888", lw=1, label="chance")
    axes[1].set_title("identity probe (training subjects)")
    axes[1].set_ylabel("subject accuracy % (95 % interval)")
    if region is not None and len(region):
        lines(axes[2], region, "branch", "share", "low", "high")
        uniform = region.groupby("depth")["uniform"].mean().sort_index()
        axes[2].plot(uniform.index, 100 * uniform.to_numpy(), ls="--", color="#888888", lw=1, label="uniform map")
        axes[2].set_ylabel("Grad-CAM mass inside region %")
    else:
        axes[2].text(0.5, 0.5, "not measured\n" + region_reason, ha="center", va="center", wrap=True, fontsize=9,
                     transform=axes[2].transAxes)
        axes[2].set_yticks([])
    axes[2].set_title("region probe")
    depths = sorted(set(uf1["depth"]) | set(identity["depth"]))
    for ax in axes:
        ax.set_xticks(depths)
        ax.set_xlabel("spatial branch depth (blocks)")
        if ax.has_data():
            ax.set_ylim(0, 105)
            ax.legend(fontsize=8, loc="lower left")
    return footer(fig, label)


def embedding_grid(embeddings: dict, label: str) -> plt.Figure:
    """2-D embeddings (t-SNE) of features, one row per name (e.g. a depth), coloured by class
    (left) and by subject (right). ``embeddings``: name -> DataFrame with x, y, class, subject."""
    fig, axes = plt.subplots(len(embeddings), 2, figsize=(9.5, 3.6 * len(embeddings)), squeeze=False)
    for row, (name, frame) in zip(axes, embeddings.items()):
        for ax, colour in zip(row, ("class", "subject")):
            sns.scatterplot(data=frame, x="x", y="y", hue=colour, ax=ax, s=28, palette=PALETTE, legend=True)
            ax.set_title(f"{name}: coloured by {colour}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("")
            ax.set_ylabel("")
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), title=None, frameon=False, fontsize=7)
    return footer(fig, label)


def spotting_timeline(scores: pd.DataFrame, thresholds: dict, truths: pd.DataFrame, spotted: pd.DataFrame,
                      title: str, label: str) -> plt.Figure:
    """One long video: the spotter's score at each scale against the frame number (``scores``:
    frame, one column per scale) with its threshold (dashed), and below it the ground-truth
    intervals (``truths``: onset, offset, kind, emotion) and the spotted ones (``spotted``: onset,
    offset, kind, and ``pred_emotion`` when recognised), each labelled with its emotion."""
    scales = [column for column in scores.columns if column != "frame"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.6), sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})
    colours = dict(zip(scales, sns.color_palette(PALETTE, max(2, len(scales)))))
    for scale in scales:
        top.plot(scores["frame"], scores[scale], color=colours[scale], lw=1, label=f"{scale} score")
        top.axhline(thresholds[scale], color=colours[scale], lw=1, ls="--", label=f"{scale} threshold")
    top.set_ylabel("block difference score")
    top.legend(fontsize=8, loc="upper right", ncol=2)
    top.set_title(title)
    rows = [("ground truth", truths, "emotion", 1.0), ("spotted", spotted, "pred_emotion", 0.0)]
    for name, frame, column, y in rows:
        for interval in frame.itertuples(index=False):
            kind = getattr(interval, "kind", "")
            bottom.broken_barh([(interval.onset, interval.offset - interval.onset + 1)], (y - 0.3, 0.6),
                               color="#c44e52" if kind == "micro" else "#4c72b0", alpha=0.75)
            text = str(getattr(interval, column, "") or "")
            if text and text != "nan":
                bottom.text((interval.onset + interval.offset) / 2, y + 0.36, text, ha="center", va="bottom", fontsize=7)
    bottom.set_yticks([1.0, 0.0])
    bottom.set_yticklabels([name for name, *_ in rows])
    bottom.set_ylim(-0.5, 1.75)
    bottom.set_xlabel("frame (red: micro, blue: macro)")
    return footer(fig, label)
