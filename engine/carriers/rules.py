"""The `carriers:` section of the rules file: which carrier ships what where, the backup, stalls, degradation.

Choice order: the first row of `by_goods` whose `when:` matches the order's goods (and region, when the row names
regions), then the order's region in `regions`, then `default`. Weight is the sum of the items' `weight_kg`
attribute × quantity; an item without it makes the weight unknown, and a weight condition never matches an unknown
weight (so a row for heavy goods does not catch orders nobody weighed). Size is the longest side (`length_cm`,
`width_cm`, `height_cm`, `depth_cm`) of any item.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CarrierId = Literal["sf", "deppon", "kuaidi100"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CarrierChoice(_M):
    primary: CarrierId
    backup: CarrierId | None = None


Short = Annotated[str, Field(min_length=1, max_length=100)]


class CarrierWhen(_M):
    """Conditions of a `by_goods` row; all given ones must hold. Item conditions hold when any item matches."""

    skus: Annotated[list[Short], Field(max_length=50)] = []  # shell-style patterns on the item SKU: "MOTOR-*"
    names: Annotated[list[Short], Field(max_length=50)] = []  # substrings of the item name: "电机"
    regions: Annotated[list[Short], Field(max_length=50)] = []
    min_weight_kg: Annotated[Decimal, Field(ge=0, le=100_000)] | None = None
    max_weight_kg: Annotated[Decimal, Field(ge=0, le=100_000)] | None = None
    min_size_cm: Annotated[Decimal, Field(ge=0, le=10_000)] | None = None
    max_size_cm: Annotated[Decimal, Field(ge=0, le=10_000)] | None = None

    @model_validator(mode="after")
    def _sane(self) -> CarrierWhen:
        if not self.model_dump(exclude_defaults=True):
            raise ValueError("`when` needs at least one condition (a row without one would catch every order; "
                             "use `default` for that)")
        for lo, hi in (("min_weight_kg", "max_weight_kg"), ("min_size_cm", "max_size_cm")):
            if getattr(self, lo) is not None and getattr(self, hi) is not None and getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} is greater than {hi}")
        return self


class CarrierRow(CarrierChoice):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
    when: CarrierWhen


@dataclass(frozen=True, slots=True)
class Goods:
    """What carrier rows read from an order's items."""

    skus: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    weight_kg: Decimal | None = None  # None: some item has no weight
    size_cm: Decimal | None = None  # longest side of any item; None: no item has dimensions


def _number(v: Any) -> Decimal | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() and d >= 0 else None


def goods_of(items: Sequence[Any]) -> Goods:
    """Goods facts of `engine.order.Item`s (anything with sku, name, qty, attributes)."""
    weight: Decimal | None = Decimal(0)
    size: Decimal | None = None
    for it in items:
        w = _number(it.attributes.get("weight_kg"))
        weight = None if weight is None or w is None else weight + w * it.qty
        for side in ("length_cm", "width_cm", "height_cm", "depth_cm"):
            if (d := _number(it.attributes.get(side))) is not None and (size is None or d > size):
                size = d
    return Goods(tuple(i.sku for i in items), tuple(i.name for i in items), weight if items else None, size)


def _why_not(w: CarrierWhen, region: str | None, g: Goods) -> str | None:
    """None when the row matches, else the first condition that fails, in words."""
    if w.skus and not any(fnmatchcase(s, p) for s in g.skus for p in w.skus):
        return f"no item SKU matches {', '.join(w.skus)}"
    if w.names and not any(n in name for name in g.names for n in w.names):
        return f"no item name contains {', '.join(w.names)}"
    if w.regions and (region or "") not in w.regions:
        return f"region {region or '-'} not in {', '.join(w.regions)}"
    for bound, value, unit in (("weight_kg", g.weight_kg, "kg"), ("size_cm", g.size_cm, "cm")):
        lo, hi = getattr(w, f"min_{bound}"), getattr(w, f"max_{bound}")
        if lo is None and hi is None:
            continue
        if value is None:
            return f"{bound} unknown"
        if lo is not None and value < lo:
            return f"{bound} {value} < {lo}"
        if hi is not None and value > hi:
            return f"{bound} {value} > {hi}"
    return None


class Degradation(_M):
    """A carrier × region whose 7-day transit p50 or p90 exceeds its 30-day baseline by `ratio` is degraded."""

    ratio: Annotated[float, Field(gt=1)] = 1.5
    min_samples: Annotated[int, Field(ge=1)] = 5  # deliveries needed in each window before judging
    notify_role: Literal["supply_chain", "admin", "manager"] = "supply_chain"


# A safe subset for waybill patterns from the rules: literal capitals/digits, `\d`, or a class of capitals/digits
# (ranges allowed), each optionally with a bounded `{n}` / `{n,m}` count. No groups, alternation, nesting or
# unbounded repeats, so matching is linear and catastrophic backtracking is impossible by construction.
_ATOM = r"(?:[A-Z0-9]|\\d|\[(?:[A-Z0-9](?:-[A-Z0-9])?)+\])(?:\{\d{1,2}(?:,\d{1,2})?\})?"
_SAFE_PATTERN = re.compile(rf"(?:{_ATOM}){{1,20}}")
_COUNT = re.compile(r"\{(\d{1,2})(?:,(\d{1,2}))?\}")


class WaybillPatternRule(_M):
    """An extra waybill-number pattern the proof OCR tries after the built-in ones (issue 15)."""

    carrier: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
    regex: Annotated[str, Field(min_length=2, max_length=64)]

    @model_validator(mode="after")
    def _safe(self) -> WaybillPatternRule:
        if not _SAFE_PATTERN.fullmatch(self.regex):
            raise ValueError("waybill pattern must be capitals/digits, \\d or [A-Z0-9] classes with {n} or {n,m} "
                             "counts only (no groups, |, *, + or ?)")
        longest = 0
        for m in _COUNT.finditer(self.regex):
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if lo > hi:
                raise ValueError(f"waybill pattern count {m.group(0)} has min > max")
            longest += hi
        if longest > 40:
            raise ValueError("waybill pattern matches numbers longer than 40 characters")
        return self


class CarrierRules(_M):
    default: CarrierChoice = CarrierChoice(primary="sf", backup="deppon")
    by_goods: Annotated[list[CarrierRow], Field(max_length=200)] = []  # first match wins, before `regions`
    regions: dict[str, CarrierChoice] = Field(default_factory=dict)
    stall_after_pickup_hours: Annotated[int, Field(ge=1, le=720)] = 48
    degradation: Degradation = Field(default_factory=Degradation)
    waybill_patterns: Annotated[list[WaybillPatternRule], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> CarrierRules:
        ids = [r.id for r in self.by_goods]
        if dup := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"by_goods ids must be unique: {', '.join(dup)}")
        return self

    def choice(self, region: str | None, goods: Goods | None = None) -> CarrierChoice:
        return self.chosen(region, goods)[0]

    def chosen(self, region: str | None, goods: Goods | None = None) -> tuple[CarrierChoice, str]:
        """The choice and what made it: `by_goods:<id>`, `regions:<region>` or `default`."""
        if goods is not None:
            for row in self.by_goods:
                if _why_not(row.when, region, goods) is None:
                    return row, f"by_goods:{row.id}"
        if region and region in self.regions:
            return self.regions[region], f"regions:{region}"
        return self.default, "default"

    def explain(self, region: str | None, goods: Goods) -> list[str]:
        """Every carrier row considered for an order, in order: ✓ the winner, ✗ with the failing condition,
        · skipped after the winner; then region and default."""
        lines, won = [], False
        for row in self.by_goods:
            why = _why_not(row.when, region, goods)
            mark = "·" if won else "✓" if why is None else "✗"
            note = "skipped (an earlier row matched)" if won else why or "matched"
            lines.append(f"  {mark} by_goods:{row.id} → {row.primary}/{row.backup or '-'}  [{note}]")
            won = won or why is None
        in_regions = bool(region and region in self.regions)
        if in_regions:
            c = self.regions[region or ""]
            lines.append(f"  {'·' if won else '✓'} regions:{region} → {c.primary}/{c.backup or '-'}")
        lines.append(f"  {'·' if won or in_regions else '✓'} default → {self.default.primary}/"
                     f"{self.default.backup or '-'}")
        return lines

    def order_of_carriers(self, region: str | None, goods: Goods | None = None) -> list[str]:
        """The carriers to try for an order, first choice first."""
        c = self.choice(region, goods)
        return [c.primary] + ([c.backup] if c.backup and c.backup != c.primary else [])
