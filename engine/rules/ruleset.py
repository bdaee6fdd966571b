"""A loaded rules file, compiled once: closures for every condition, lookup tables for cities, bases and SKUs.

Compilation also checks what the schema alone cannot (unknown base, city in two regions, a bad expression, ...),
collecting every problem with its location instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.alert_groups import GroupPolicy
from engine.anomaly_library import TERMS
from engine.ladder import Step
from engine.ladder import plan as ladder_plan
from engine.order import Order
from engine.rules.calendar import (
    BusinessCalendar,
    OfficialHolidays,
    coverage_gap,
    coverage_year,
    merge_holidays,
    wall_clock_add_many,
)
from engine.rules.conditions import ALWAYS, CompiledCond, CondError, compile_condition
from engine.rules.decisions import Escalation
from engine.rules.facts import Facts
from engine.rules.fields import Ctx
from engine.rules.model import ApprovalLevel, RulesFile
from engine.rules.owners import COwner, OwnerNeed, owner_need
from engine.rules.routing import haversine_km
from engine.stages import Stage

Loc = tuple[str | int, ...]
_CACHE_LIMIT = 50_000
_TIMES_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Problem:
    """A compile-time problem before it is given a file position."""

    loc: Loc
    message: str
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class CApproval:
    id: str
    kind: str
    cond: CompiledCond
    levels: tuple[ApprovalLevel, ...]


@dataclass(frozen=True, slots=True)
class CSla:
    id: str
    stage: Stage
    limit: timedelta
    cond: CompiledCond
    business_time: bool
    warn_at: float
    # precomputed at load: deadline, warning, then each escalation rung (all measured from entering the stage)
    offsets: tuple[timedelta, ...] = ()


@dataclass(frozen=True, slots=True)
class CRow:
    """A generic compiled row: id, condition and a payload (points, outcome, base …)."""

    id: str
    cond: CompiledCond
    payload: Any
    outcome: str = ""  # the trace text when it matches, rendered once at load


@dataclass(slots=True)
class RuleSet:
    """The compiled rules. Build it with `load_rules`; treat it as immutable (caches inside are pure memos)."""

    version: str
    source: str
    text: str
    model: RulesFile
    tz: ZoneInfo
    city_region: dict[str, str]
    calendar: BusinessCalendar
    approvals: tuple[CApproval, ...]
    sla_limits: dict[Stage, tuple[CSla, ...]]
    sla_pause_stages: frozenset[Stage]
    sla_pause_when: CompiledCond | None
    escalation: tuple[tuple[str, timedelta], ...]
    priority_base: int
    top_fraction: float
    weights: tuple[CRow, ...]
    refund_rows: tuple[CRow, ...]
    overrides: tuple[CRow, ...]
    sku_prefixes: tuple[tuple[str, str], ...]
    default_product_type: str | None
    city_coords: dict[str, tuple[float, float]]
    holiday_coverage: dict[str, int | None] = field(default_factory=dict)  # calendar → last year its holidays cover
    holiday_source: str = ""  # the official holiday data merged in ("" when none was given)
    owners: tuple[COwner, ...] = ()  # the `owners:` rows in file order (engine.rules.owners)
    _sku_cache: dict[str, str | None] = field(default_factory=dict)
    _capable_cache: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    _dist_cache: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, float], ...]] = field(default_factory=dict)
    _times_cache: dict[tuple[str, datetime, tuple[timedelta, ...]], tuple[datetime, ...]] = field(default_factory=dict)
    _ladder_cache: dict[tuple[str, datetime, Any], tuple[datetime, datetime, tuple[Escalation, ...]]] = field(
        default_factory=dict
    )

    # --- lookups ------------------------------------------------------------------------------------------------

    def holiday_gaps(self, today: date) -> list[tuple[str, int]]:
        """(calendar, last year covered) for each calendar whose holiday data ends before `today`'s year."""
        return [(name, year) for name, year in self.holiday_coverage.items()
                if year is not None and coverage_gap(year, today)]

    def order_region(self, city: str) -> str | None:
        """An order's region: its city's, else the file's `default_region` (None: the city is in no region)."""
        return self.region_of(city) or self.model.default_region

    def region_of(self, city: str) -> str | None:
        """The region whose city list holds `city` (exact, or with a trailing 市 removed)."""
        if not city:
            return None
        r = self.city_region.get(city)
        if r is None and city.endswith("市"):
            r = self.city_region.get(city[:-1])
        return r

    def product_type_of(self, sku: str, attributes: dict[str, Any] | None = None) -> str | None:
        if attributes:
            t = attributes.get("product_type")
            if isinstance(t, str) and t in self.model.product_types:
                return t
        try:
            return self._sku_cache[sku]
        except KeyError:
            pass
        found = self.default_product_type
        for prefix, t in self.sku_prefixes:
            if sku.startswith(prefix):
                found = t
                break
        if len(self._sku_cache) < _CACHE_LIMIT:
            self._sku_cache[sku] = found
        return found

    def product_types_of(self, order: Order) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for item in order.data.items:
            t = self.product_type_of(item.sku, item.attributes)
            if t is not None:
                seen[t] = None
        return tuple(seen)

    def capable_bases(self, types: tuple[str, ...]) -> tuple[str, ...]:
        """Bases that make every product type of the order, in file order."""
        try:
            return self._capable_cache[types]
        except KeyError:
            pass
        need = set(types)
        out = tuple(bid for bid, b in self.model.bases.items() if need <= set(b.makes))
        if len(self._capable_cache) < _CACHE_LIMIT:
            self._capable_cache[types] = out
        return out

    def bases_by_distance(self, city: str, types: tuple[str, ...]) -> tuple[tuple[str, float], ...] | None:
        """Capable bases nearest first, or None when the city has no coordinates."""
        key = (city, types)
        try:
            return self._dist_cache[key]
        except KeyError:
            pass
        here = self.city_coords.get(city) or (self.city_coords.get(city[:-1]) if city.endswith("市") else None)
        if here is None:
            return None
        out = tuple(
            sorted(
                ((bid, round(haversine_km(here, self.model.bases[bid].coords), 1)) for bid in self.capable_bases(types)),
                key=lambda x: x[1],
            )
        )
        if len(self._dist_cache) < _CACHE_LIMIT:
            self._dist_cache[key] = out
        return out

    # --- SLA ----------------------------------------------------------------------------------------------------

    def sla_limit_for(self, ctx: Any, stage: Stage) -> tuple[CSla | None, list[tuple[CSla, bool | None]]]:
        """First matching limit for the stage, and what was considered (True/False matched, None = not reached)."""
        considered: list[tuple[CSla, bool | None]] = []
        chosen = None
        for lim in self.sla_limits.get(stage, ()):
            if chosen is not None:
                considered.append((lim, None))
                continue
            ok = _safe_test(lim.cond, ctx)
            considered.append((lim, ok))
            if ok:
                chosen = lim
        return chosen, considered

    def add_times(self, lim: CSla, start: datetime, amounts: tuple[timedelta, ...] | list[timedelta]) -> list[datetime]:
        """`start` plus each amount, in business or wall-clock time as the limit says.

        Memoised on (limit, start, amounts): the orders of an intake batch all enter their stage at the batch's `now`,
        so a batch computes each limit's deadline, warning and ladder once instead of once per order.
        """
        key = (lim.id, start, tuple(amounts))
        try:
            return list(self._times_cache[key])
        except KeyError:
            pass
        if lim.business_time:
            out = self.calendar.add_many(start, amounts)
        else:
            out = wall_clock_add_many(start, amounts)
        if len(self._times_cache) >= _TIMES_CACHE_LIMIT:
            self._times_cache.clear()  # starts move with the clock: old entries are never asked for again
        self._times_cache[key] = tuple(out)
        return out

    def sla_ladder(self, lim: CSla, start: datetime) -> tuple[datetime, datetime, tuple[Escalation, ...]]:
        """Deadline, warning and escalation ladder of `lim` for a stage entered at `start`: `add_times` of the limit's
        offsets, memoised the same way with the `Escalation`s built once (they are immutable, a batch shares them)."""
        key = (lim.id, start, start.tzinfo)
        try:
            return self._ladder_cache[key]
        except KeyError:
            pass
        times = self.add_times(lim, start, lim.offsets)
        ladder = tuple(Escalation(i, role, at) for i, ((role, _), at) in enumerate(zip(self.escalation, times[2:]), start=1))
        if len(self._ladder_cache) >= _TIMES_CACHE_LIMIT:
            self._ladder_cache.clear()
        out = self._ladder_cache[key] = (times[0], times[1], ladder)
        return out

    def stage_ladder(self, order: Order, facts: Facts | None = None) -> tuple[Step, ...] | None:
        """The stall ladder of `order`'s current stage (engine/ladder.py): warning, breach and escalation rungs in
        the limit's time (business time unless the limit says otherwise), or None (no limit, or clock paused)."""
        stage = Stage(order.stage)
        if stage in self.sla_pause_stages:
            return None
        ctx = self.context(order, facts or Facts(), order.stage_entered_at)
        if self.sla_pause_when is not None and _safe_test(self.sla_pause_when, ctx):
            return None
        lim, _ = self.sla_limit_for(ctx, stage)
        if lim is None:
            return None
        deadline, warn, ladder = self.sla_ladder(lim, order.stage_entered_at)
        return ladder_plan(deadline, warn, [(e.role, e.at) for e in ladder])

    @property
    def group_policy(self) -> GroupPolicy:
        g = self.model.sla.grouping
        return GroupPolicy(tuple(g.group_by), g.group_wait, g.group_interval, g.repeat_interval)

    def context(self, order: Order, facts: Facts, now: datetime) -> Ctx:
        """The evaluation context of `order` under these rules.

        The rules are the authority on regions: a stored region is the result of an older version, not an input. A
        city in no region takes the file's default_region; with none, the region stays unknown (None) and approvals
        for `region: order` go to the admins, never to every region's managers.
        """
        return Ctx(order, facts, now, self.tz, self.order_region(order.data.customer.city), self.product_types_of(order))

    def deadline_for(self, order: Order, stage: Stage, entered_at: datetime, facts: Facts | None = None, *,
                     like: Any = None) -> datetime | None:
        """The SLA deadline of `stage` entered at `entered_at` (aware UTC), or None (no limit, or clock paused).

        `like`: the context of an evaluation of this same order object with these same facts (as `evaluate` was given
        it, e.g. just before the stage moved), used for this one with the order's stage and the time as they are now
        (restored before returning) instead of building a context anew: only `now` and `order.stage` differ.
        """
        stage = Stage(stage)
        if stage in self.sla_pause_stages:
            return None
        if like is None:
            return self._deadline(self.context(order, facts or Facts(), entered_at), stage, entered_at)
        if like.order is not order:
            raise ValueError("`like` must be a context of this same order")
        saved = like.now, like.o_stage
        like.now, like.o_stage = entered_at, order.stage.value
        try:
            return self._deadline(like, stage, entered_at)
        finally:
            like.now, like.o_stage = saved

    def _deadline(self, ctx: Any, stage: Stage, entered_at: datetime) -> datetime | None:
        if self.sla_pause_when is not None and _safe_test(self.sla_pause_when, ctx):
            return None
        lim, _ = self.sla_limit_for(ctx, stage)
        if lim is None:
            return None
        return self.add_times(lim, entered_at, lim.offsets or (lim.limit,))[0]  # offsets[0] is the limit: evaluate's memo

    # --- owners -------------------------------------------------------------------------------------------------

    def owner_need_for(self, order: Order, stage: Stage, base: str | None) -> OwnerNeed | None:
        """What the `owners:` rows ask for `order` entering `stage` (None: no row; the owner stays)."""
        if not self.owners:
            return None
        region = self.order_region(order.data.customer.city)
        return owner_need(self.owners, Stage(stage), region, base, self.product_types_of(order))[0]

    # --- anomalies (data for the classifier, which lives outside the rules package) -------------------------------

    @property
    def anomaly_categories(self) -> dict[str, Any]:
        return dict(self.model.anomalies.categories)

    def library_gaps(self) -> list[str]:
        """The bundled category library's ids (README, "Anomaly trends and the morning digest") this file has no
        category for, in library order: a note the library would put there is filed under a weaker match or none. A
        warning, not an error: a merchant may leave a category out on purpose."""
        have = self.model.anomalies.categories
        return [cid for cid in TERMS if cid not in have]

    @property
    def trends(self) -> list[Any]:
        return list(self.model.anomalies.trends)

    def category_threshold(self, category: str) -> float:
        c = self.model.anomalies.categories.get(category)
        if c is not None and c.threshold is not None:
            return c.threshold
        return self.model.anomalies.threshold


def _safe_test(cond: CompiledCond, ctx: Any) -> bool:
    try:
        return bool(cond.test(ctx))
    except (TypeError, ValueError, ArithmeticError):
        return False


# --- compilation ------------------------------------------------------------------------------------------------


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, loc: Loc, message: str, offset: int | None = None) -> None:
        self.problems.append(Problem(loc, message, offset))

    def cond(self, cond: Any, loc: Loc) -> CompiledCond:
        try:
            return compile_condition(cond, loc)
        except CondError as e:
            self.add(e.loc, e.message, e.offset)
            return ALWAYS


def compile_model(m: RulesFile, *, version: str, source: str, text: str,
                  official: OfficialHolidays | None = None) -> tuple[RuleSet | None, list[Problem]]:
    """Compile a validated model; return (RuleSet, []) or (None, problems)."""
    col = _Collector()
    tz = _zone(m.timezone, ("timezone",), col)

    # ids are unique across the file so a trace line names exactly one rule
    seen_ids: dict[str, Loc] = {}

    def claim(rule_id: str, loc: Loc) -> None:
        if rule_id in seen_ids:
            col.add((*loc, "id"), f"the rule id {rule_id!r} is used twice (first at {_fmt(seen_ids[rule_id])})")
        else:
            seen_ids[rule_id] = loc

    city_region: dict[str, str] = {}
    for rname, region in m.regions.items():
        for i, city in enumerate(region.cities):
            if city in city_region and city_region[city] != rname:
                col.add(("regions", rname, "cities", i), f"{city} is already in region {city_region[city]}")
            city_region[city] = rname
        if region.default_base is not None and region.default_base not in m.bases:
            col.add(("regions", rname, "default_base"), f"unknown production base {region.default_base!r}{_one_of(m.bases)}")

    if m.default_region is not None and m.default_region not in m.regions:
        col.add(("default_region",), f"unknown region {m.default_region!r}{_one_of(m.regions)}")

    calendars: dict[str, BusinessCalendar] = {}
    coverage: dict[str, int | None] = {}
    for cname, cal in m.calendars.items():
        _zone(cal.timezone, ("calendars", cname, "timezone"), col)
        try:
            used = official if cal.official == "china" else None
            holidays, extra = merge_holidays(cal.holidays, cal.extra_workdays, used)
            calendars[cname] = BusinessCalendar.build(cal.timezone, cal.hours, cal.workdays, sorted(holidays),
                                                      sorted(extra))
            coverage[cname] = coverage_year(cal.holidays, used)
        except (ValueError, ZoneInfoNotFoundError) as e:
            col.add(("calendars", cname, "hours"), str(e))
    if m.sla.calendar not in m.calendars:
        col.add(("sla", "calendar"), f"unknown calendar {m.sla.calendar!r}{_one_of(m.calendars)}")

    approvals = []
    for i, a in enumerate(m.approvals):
        loc: Loc = ("approvals", i)
        claim(a.id, loc)
        for j, lvl in enumerate(a.levels):
            if lvl.region not in (None, "order") and lvl.region not in m.regions:
                col.add((*loc, "levels", j, "region"), f"unknown region {lvl.region!r}; use `order` or{_one_of(m.regions, lead='')}")
        approvals.append(CApproval(a.id, a.kind, col.cond(a.when, (*loc, "when")), tuple(a.levels)))

    sla_limits: dict[Stage, list[CSla]] = {}
    for i, lim in enumerate(m.sla.limits):
        loc = ("sla", "limits", i)
        claim(lim.id, loc)
        if lim.limit <= timedelta(0):
            col.add((*loc, "limit"), "the limit must be longer than zero")
        if lim.stage in (Stage.COMPLETED, Stage.CANCELLED):
            col.add((*loc, "stage"), f"{lim.stage.value} is an end state; it has no time limit")
        cond = col.cond(lim.when, (*loc, "when"))
        warn = lim.warn_at or m.sla.warn_at
        offsets = (lim.limit, lim.limit * warn, *(lim.limit + step.after for step in m.sla.escalation))
        sla_limits.setdefault(lim.stage, []).append(CSla(lim.id, lim.stage, lim.limit, cond, lim.business_time, warn, offsets))
    pause_when = col.cond(m.sla.pause_when, ("sla", "pause_when")) if m.sla.pause_when is not None else None

    for pid in m.product_types:
        _check_id(pid, ("product_types", pid), col)
    for bid, base in m.bases.items():
        _check_id(bid, ("bases", bid), col)
        for j, t in enumerate(base.makes):
            if t not in m.product_types:
                col.add(("bases", bid, "makes", j), f"unknown product type {t!r}{_one_of(m.product_types)}")
        _check_coords(base.coords, ("bases", bid, "coords"), col)
    for city, xy in m.routing.cities.items():
        _check_coords(xy, ("routing", "cities", city), col)
    if m.routing.default_product_type is not None and m.routing.default_product_type not in m.product_types:
        col.add(("routing", "default_product_type"), f"unknown product type {m.routing.default_product_type!r}{_one_of(m.product_types)}")
    overrides = []
    for i, ov in enumerate(m.routing.overrides):
        loc = ("routing", "overrides", i)
        claim(ov.id, loc)
        if ov.base not in m.bases:
            col.add((*loc, "base"), f"unknown production base {ov.base!r}{_one_of(m.bases)}")
        overrides.append(CRow(ov.id, col.cond(ov.when, (*loc, "when")), ov.base))

    refund_rows = []
    for i, row in enumerate(m.refunds.matrix):
        loc = ("refunds", "matrix", i)
        claim(row.id, loc)
        refund_rows.append(CRow(row.id, col.cond(row.when, (*loc, "when")), row))

    weights = []
    for i, w in enumerate(m.priority.weights):
        loc = ("priority", "weights", i)
        claim(w.id, loc)
        weights.append(CRow(w.id, col.cond(w.when, (*loc, "when")), w.points, f"{w.points:+d}"))

    for cid in m.anomalies.categories:
        _check_id(cid, ("anomalies", "categories", cid), col)
    for i, tr in enumerate(m.anomalies.trends):
        loc = ("anomalies", "trends", i)
        claim(tr.id, loc)
        if tr.category != "any" and tr.category not in m.anomalies.categories:
            col.add((*loc, "category"), f"unknown anomaly category {tr.category!r}; use `any` or{_one_of(m.anomalies.categories, lead='')}")
        if tr.consecutive is None and tr.count is None:
            col.add(loc, "a trend needs `consecutive: N` or `count: N` with `window`")
        if tr.count is not None and tr.window is None:
            col.add((*loc, "window"), "`count` needs a `window`, e.g. 24h")
        for j, rcp in enumerate(tr.notify):
            if rcp.region is not None and rcp.region not in m.regions:
                col.add((*loc, "notify", j, "region"), f"unknown region {rcp.region!r}{_one_of(m.regions)}")

    owners = _compile_owners(m, col, claim)

    if col.problems:
        return None, col.problems
    for cal in calendars.values():
        cal.warm()  # build the day table now, not during the first evaluation

    prefixes = sorted(
        ((p, tid) for tid, t in m.product_types.items() for p in t.sku_prefixes), key=lambda x: -len(x[0])
    )
    rs = RuleSet(
        version=version,
        source=source,
        text=text,
        model=m,
        tz=tz,
        city_region=city_region,
        calendar=calendars[m.sla.calendar],
        approvals=tuple(approvals),
        sla_limits={k: tuple(v) for k, v in sla_limits.items()},
        sla_pause_stages=frozenset(m.sla.pause_stages),
        sla_pause_when=pause_when,
        escalation=tuple((s.role, s.after) for s in m.sla.escalation),
        priority_base=m.priority.base,
        top_fraction=m.priority.top_fraction,
        weights=tuple(weights),
        refund_rows=tuple(refund_rows),
        overrides=tuple(overrides),
        sku_prefixes=tuple(prefixes),
        default_product_type=m.routing.default_product_type,
        city_coords=dict(m.routing.cities) | {b.city: b.coords for b in m.bases.values() if b.city not in m.routing.cities},
        holiday_coverage=coverage,
        holiday_source=official.source if official is not None else "",
        owners=owners,
    )
    return rs, []


def _compile_owners(m: RulesFile, col: _Collector, claim: Any) -> tuple[COwner, ...]:
    """`owners:` rows, each naming known regions, bases and product types, and exactly one of user / pool."""
    out = []
    for i, row in enumerate(m.owners):
        loc: Loc = ("owners", i)
        claim(row.id, loc)
        if row.stage in (Stage.COMPLETED, Stage.CANCELLED):
            col.add((*loc, "stage"), f"{row.stage.value} is an end state; nobody owns it")
        if row.region is not None and row.region not in m.regions:
            col.add((*loc, "region"), f"unknown region {row.region!r}{_one_of(m.regions)}")
        if row.base is not None and row.base not in m.bases:
            col.add((*loc, "base"), f"unknown production base {row.base!r}{_one_of(m.bases)}")
        if row.product is not None and row.product not in m.product_types:
            col.add((*loc, "product"), f"unknown product type {row.product!r}{_one_of(m.product_types)}")
        if (row.user is None) == (row.pool is None):
            col.add(loc, "an owners row needs exactly one of `user: NAME` or `pool: {role: ..., strategy: ...}`")
        pool = row.pool
        out.append(COwner(row.id, row.stage, row.region, row.base, row.product, row.user,
                          pool.role if pool else None, pool.strategy if pool else "round_robin"))
    return tuple(out)


def _zone(name: str, loc: Loc, col: _Collector) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        col.add(loc, f"unknown time zone {name!r}; use a name such as Asia/Shanghai")
        return ZoneInfo("UTC")


def _check_id(value: str, loc: Loc, col: _Collector) -> None:
    if not value or len(value) > 32 or any(ch in value for ch in " :/"):
        col.add(loc, f"the id {value!r} must be 1-32 characters without spaces, ':' or '/'")


def _check_coords(xy: tuple[float, float], loc: Loc, col: _Collector) -> None:
    lat, lon = xy
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        col.add(loc, "coordinates are [latitude, longitude]: latitude -90..90, longitude -180..180")


def _one_of(names: Iterable[str], lead: str = ";") -> str:
    names = list(names)
    if not names:
        return f"{lead} none are defined"
    return f"{lead} one of: {', '.join(names)}"


def _fmt(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
