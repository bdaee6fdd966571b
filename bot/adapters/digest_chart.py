"""The morning digest chart: a PNG with the stage funnel, stalls per day and this week's exception categories.

matplotlib (Agg, no display) lives here and only here: engine/ and handlers/ hand over a `ChartData` and get bytes
back through an injected callable. Chinese labels need a CJK font, and a server cannot be assumed to have one:
Noto Sans SC comes from the `justmytype-intl-cjk` wheel and is registered with matplotlib by its path, so the same
glyphs render on every machine (no system font lookup, nothing downloaded).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import threading
from importlib.resources import files
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere in this process: no GUI backend on a server

from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from engine.digest import ChartData  # noqa: E402
from engine.stages import BOARD, label  # noqa: E402
from engine.text import t  # noqa: E402

FONT_RELPATH = ("fonts", "ofl", "notosanssc", "NotoSansSC[wght].ttf")
DPI = 110
MAX_CATEGORIES = 8  # the rest are summed into "other" so the bars stay readable
_LOCK = threading.Lock()  # matplotlib's font cache and text layout are not thread-safe


@functools.cache
def cjk_font_path() -> Path:
    """The bundled Noto Sans SC file, registered with matplotlib's font manager (once per process)."""
    path = Path(str(files("justmytype_intl_cjk").joinpath(*FONT_RELPATH)))
    if not path.is_file():
        raise RuntimeError(f"the CJK font is missing from justmytype-intl-cjk: {path}")
    fm = font_manager.fontManager
    fm.addfont(str(path))
    # A variable font ([wght]) is listed under its default instance's weight (Thin, 100): list it as regular too, so
    # "normal" text finds it without a fallback warning (FreeType draws the same default instance either way).
    fm.ttflist += [dataclasses.replace(e, weight=400) for e in fm.ttflist if e.fname == str(path) and e.weight != 400]
    clear = getattr(fm, "_findfont_cached", None)  # findfont memoises answers given before the font was added
    if clear is not None:
        clear.cache_clear()
    return path


@functools.cache
def cjk_family() -> str:
    """The family name matplotlib knows the bundled font by ("Noto Sans SC")."""
    return font_manager.FontProperties(fname=str(cjk_font_path())).get_name()


def _stage_name(stage: str, language: str) -> str:
    return label(stage, language) if stage in {s.value for s in BOARD} else stage


def _categories(c: ChartData, language: str) -> list[tuple[str, int]]:
    rows = [((x.category_en if language == "en" else x.category_zh) or t("digest.uncategorised", language), x.count)
            for x in c.anomalies_week]
    if len(rows) > MAX_CATEGORIES:
        rest = sum(n for _, n in rows[MAX_CATEGORIES - 1:])
        rows = rows[:MAX_CATEGORIES - 1] + [(t("chart.other", language), rest)]
    return rows


def render_chart(c: ChartData, language: str = "zh") -> bytes:
    """The chart as PNG bytes; three panels side by side, every bar labelled with its number."""
    with _LOCK:
        family = cjk_family()  # first call registers the font: under the lock, once
    with _LOCK, matplotlib.rc_context({"font.family": [family], "font.sans-serif": [family],
                                       "axes.unicode_minus": False}):
        fig = Figure(figsize=(13, 4.6), dpi=DPI, layout="constrained")
        funnel_ax, stalls_ax, cat_ax = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1, 1.1]})
        scope = t("digest.scope", language, regions="、".join(c.regions)) if c.regions else ""
        # no emoji in the picture: Noto Sans SC has none (it would be a box)
        fig.suptitle(t("chart.title", language, date=c.day.isoformat()).removeprefix("📊 ") + scope, fontsize=14)

        names = [_stage_name(s, language) for s, _ in c.funnel][::-1]
        counts = [n for _, n in c.funnel][::-1]
        bars = funnel_ax.barh(names, counts, color="#4C78A8")
        funnel_ax.bar_label(bars, padding=3)
        funnel_ax.set_title(t("chart.funnel", language))
        funnel_ax.margins(x=0.15)

        days = [d.strftime("%m-%d") for d, _ in c.stalls_per_day]
        bars = stalls_ax.bar(days, [n for _, n in c.stalls_per_day], color="#E45756")
        stalls_ax.bar_label(bars, padding=2)
        stalls_ax.set_title(t("chart.stalls", language))
        stalls_ax.tick_params(axis="x", labelrotation=45)
        stalls_ax.margins(y=0.15)

        cats = _categories(c, language)[::-1]
        if cats:
            bars = cat_ax.barh([k for k, _ in cats], [n for _, n in cats], color="#F58518")
            cat_ax.bar_label(bars, padding=3)
            cat_ax.margins(x=0.15)
        else:
            cat_ax.text(0.5, 0.5, t("chart.none", language), ha="center", va="center", transform=cat_ax.transAxes)
            cat_ax.set_yticks([])
        cat_ax.set_title(t("chart.anomalies", language))
        for ax, counts_axis in ((funnel_ax, funnel_ax.xaxis), (stalls_ax, stalls_ax.yaxis), (cat_ax, cat_ax.xaxis)):
            ax.spines[["top", "right"]].set_visible(False)
            counts_axis.set_major_locator(MaxNLocator(integer=True))  # counts: no 2.5 orders
        if not cats:
            cat_ax.set_xticks([])
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()


def write_chart(c: ChartData, path: Path, language: str = "zh") -> Path:
    """Render and write the PNG atomically (a half-written file never sits under the name); returns the path."""
    path = path.expanduser()
    if path.suffix.lower() != ".png":
        raise ValueError(f"the chart is a PNG: give a file name ending in .png, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(render_chart(c, language))
    tmp.replace(path)
    return path.resolve()
