"""Anomaly trends: "N notes in a row of one category" and "N notes of one category within a window".

Pure decisions over notes the storage layer fetched; the clock is the new note's own time. A hit carries a dedup
key that names the run (or the window bucket), so however often the check runs, or in how many processes, the same
trend is one outbox row: the 6th note of a run proposes the very key the 5th did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from engine.anomaly import consecutive_run

Per = Literal["base", "carrier", "all"]
ANY = "any"
KEY_MAX = 120  # the outbox dedup key column is 160; a recipient suffix follows
PAYLOAD_NOTES_MAX = 20  # the newest notes of a hit the card lists (the orders are all listed)
NOTE_TEXT_MAX = 80
MAX_RUN_LOOKBACK = 200  # notes fetched to find where a run started; a longer run alerted long ago


@dataclass(frozen=True, slots=True)
class NoteFact:
    """One exception note with what trends group by (its order's production base and carrier)."""

    id: int
    order_id: int
    order_ref: str  # how people name the order: `channel:external_id`
    category: str | None
    at: datetime
    base: str | None = None
    carrier: str | None = None
    region: str | None = None
    text: str = ""  # the note itself, for the trend card


@dataclass(frozen=True, slots=True)
class TrendSpec:
    id: str
    category: str  # a category id or `any`
    consecutive: int | None
    count: int | None
    window: timedelta | None
    per: Per
    notify: tuple[tuple[str, str | None], ...]  # (role, region or None)


@dataclass(frozen=True, slots=True)
class TrendHit:
    spec: TrendSpec
    category: str
    group: str | None  # the base or carrier, None for `per: all`
    count: int
    order_refs: tuple[str, ...]  # oldest first, each once
    key: str  # names this run / window bucket: the same trend never alerts twice
    notes: tuple[NoteFact, ...] = ()  # the notes that make the trend, oldest first

    @property
    def window(self) -> timedelta | None:
        return self.spec.window if self.spec.consecutive is None else None


def specs_from_rules(trends: Iterable[Any]) -> tuple[TrendSpec, ...]:
    """Adapt the rules file's `anomalies.trends` (pydantic models) into plain specs."""
    return tuple(
        TrendSpec(tr.id, tr.category, tr.consecutive, tr.count, tr.window, tr.per,
                  tuple((r.role, r.region) for r in tr.notify))
        for tr in trends
    )


def group_of(note: NoteFact, per: Per) -> str | None:
    return {"base": note.base, "carrier": note.carrier, "all": None}[per]


def applies(spec: TrendSpec, note: NoteFact) -> bool:
    """Whether `note` can complete this trend: classified, of its category, and attributable to a group."""
    if note.category is None or (spec.category != ANY and spec.category != note.category):
        return False
    return spec.per == "all" or group_of(note, spec.per) is not None


def _orders(notes: Sequence[NoteFact]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.order_ref for n in sorted(notes, key=lambda n: n.id)))


def _oldest_first(notes: Sequence[NoteFact]) -> tuple[NoteFact, ...]:
    return tuple(sorted(notes, key=lambda n: n.id))


def _key(spec: TrendSpec, group: str | None, category: str, anchor: str) -> str:
    key = f"trend:{spec.id}:{group or '*'}:{category}:{anchor}"
    if len(key) > KEY_MAX:  # long ids and group names: keep the key within the outbox column, still unique
        key = f"trend:{hashlib.sha256(key.encode()).hexdigest()[:32]}:{anchor}"
    return key


def consecutive_hit(spec: TrendSpec, new: NoteFact, recent: Sequence[NoteFact], *, truncated: bool = False
                    ) -> TrendHit | None:
    """`recent`: the group's notes up to and including `new`, newest first.

    Fires while the run containing `new` is at least N long; the key is the N-th note of the run, so the 6th, 7th…
    note of the same run propose the same key (one alert), and a break starts a new run with a new key. When the
    run fills all of a `truncated` history, where it started is unknown: no hit (it reached N long ago).
    """
    n = spec.consecutive
    if n is None or not applies(spec, new):
        return None
    category, run = consecutive_run(note.category for note in recent)
    if category != new.category or run < n or (truncated and run == len(recent)):
        return None
    group = group_of(new, spec.per)
    anchor = recent[run - n]  # the note that made the run N long
    return TrendHit(spec, category, group, run, _orders(recent[:run]), _key(spec, group, category, f"n{anchor.id}"),
                    _oldest_first(recent[:run]))


def window_hit(spec: TrendSpec, new: NoteFact, recent: Sequence[NoteFact]) -> TrendHit | None:
    """`recent`: the group's notes up to and including `new`, newest first (older ones are ignored here).

    Fires when at least N notes of the category fall within the window ending at `new`; the key is the window-long
    time bucket of `new`, so a burst alerts once per window length at most.
    """
    if spec.count is None or spec.window is None or not applies(spec, new):
        return None
    since = new.at - spec.window
    inside = [note for note in recent if note.category == new.category and since < note.at <= new.at]
    if len(inside) < spec.count:
        return None
    group = group_of(new, spec.per)
    bucket = int(new.at.timestamp() // spec.window.total_seconds())
    return TrendHit(spec, new.category or "", group, len(inside), _orders(inside),
                    _key(spec, group, new.category or "", f"w{bucket}"), _oldest_first(inside))


def detect(spec: TrendSpec, new: NoteFact, recent: Sequence[NoteFact], *, truncated: bool = False
           ) -> TrendHit | None:
    """The trend `spec` as of `new`: a consecutive rule if it has one, else a count-within-window rule."""
    if spec.consecutive is not None:
        return consecutive_hit(spec, new, recent, truncated=truncated)
    return window_hit(spec, new, recent)


def recipients(spec: TrendSpec, new: NoteFact) -> list[tuple[str, str | None]]:
    """Who a hit goes to: the trend's roles; `region_head` is the note's region manager; owner/supervisor (order
    people, not trend people) mean supply chain. Duplicates collapse."""
    out: dict[tuple[str, str | None], None] = {}
    for role, region in spec.notify or (("supply_chain", None),):
        if role == "region_head":
            role, region = "manager", region or new.region
        elif role in ("owner", "supervisor"):
            role, region = "supply_chain", None
        out[(role, region)] = None
    return list(out)


def hit_payload(hit: TrendHit, names: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """The JSON an outbox row keeps; the notifier renders it in its language at send time."""
    zh, en = names.get(hit.category, (hit.category, hit.category))
    return {"trend_id": hit.spec.id, "hit": hit.key, "category": hit.category, "category_zh": zh, "category_en": en,
            "count": hit.count, "per": hit.spec.per, "group": hit.group, "orders": list(hit.order_refs),
            "window_s": int(hit.window.total_seconds()) if hit.window else None,
            "notes": [{"id": n.id, "order": n.order_ref, "text": n.text[:NOTE_TEXT_MAX]}
                      for n in hit.notes[-PAYLOAD_NOTES_MAX:]]}
