"""Who owns an order in a stage: the rules' `owners:` rows, and the choice among a pool's members.

Pure: the caller (storage.owners) passes the candidates with their current load and the pool's round-robin turn,
both read from PostgreSQL inside the transaction that enters the stage, so several workers never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.stages import Stage
from engine.text import role_name


@dataclass(frozen=True, slots=True)
class COwner:
    """A compiled `owners:` row."""

    id: str
    stage: Stage
    region: str | None
    base: str | None
    product: str | None
    user: str | None
    role: str | None
    strategy: str

    def matches(self, region: str | None, base: str | None, product_types: Iterable[str]) -> bool:
        return ((self.region is None or self.region == region) and (self.base is None or self.base == base)
                and (self.product is None or self.product in tuple(product_types)))

    def condition(self) -> str:
        parts = [f"stage == {self.stage.value}"]
        parts += [f"{k} == {v}" for k, v in (("region", self.region), ("base", self.base)) if v is not None]
        if self.product is not None:
            parts.append(f"{self.product} in product_types")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class OwnerNeed:
    """What the rules ask for an order entering `stage` (before anyone is picked)."""

    rule_id: str
    stage: Stage
    region: str | None  # the order's region: pool members must be allowed there
    user: str | None = None
    role: str | None = None
    strategy: str = "round_robin"

    @property
    def pool_key(self) -> str:
        """One round-robin cursor per rule and region (a pool is its members in one region)."""
        return f"{self.rule_id}|{self.region or ''}"

    def describe(self) -> str:
        if self.user is not None:
            return f"user {self.user}"
        return f"pool {self.role}@{self.region or '-'} {self.strategy}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A user who might own the order, as storage found them; `load`: their open orders (least-loaded only)."""

    user_id: int
    name: str
    role: str
    regions: tuple[str, ...] = ()
    active: bool = True
    load: int = 0


@dataclass(frozen=True, slots=True)
class OwnerChoice:
    user_id: int | None  # None: nobody fits (the order keeps its owner, the reason says why)
    name: str | None
    rule_id: str
    reason: str


def allowed_for_region(role: str, regions: Sequence[str], region: str | None) -> bool:
    """May this user own (or be given) an order of `region`? Admins anywhere; staff with regions in those regions
    (a manager always has some); staff without any (company-wide supply chain, finance) anywhere, as the stall
    buttons let supply chain act anywhere; customers never. An order of no region: admins and region-less staff."""
    if role == "admin":
        return True
    if role == "customer":
        return False
    if not regions:
        return role != "manager"
    return region is not None and region in regions


def owner_need(rows: Sequence[COwner], stage: Stage, region: str | None, base: str | None,
               product_types: Iterable[str]) -> tuple[OwnerNeed | None, list[tuple[COwner, bool | None]]]:
    """The first row of `stage` that matches, and what was considered (True/False; None: after the winner)."""
    types = tuple(product_types)
    considered: list[tuple[COwner, bool | None]] = []
    chosen: COwner | None = None
    for row in rows:
        if row.stage is not stage:
            continue
        if chosen is not None:
            considered.append((row, None))
            continue
        ok = row.matches(region, base, types)
        considered.append((row, ok))
        if ok:
            chosen = row
    if chosen is None:
        return None, considered
    return OwnerNeed(chosen.id, stage, region, chosen.user, chosen.role, chosen.strategy), considered


def eligible(need: OwnerNeed, candidates: Iterable[Candidate]) -> list[Candidate]:
    """The members who may take it: active, allowed in the order's region, the named user or holding the role."""
    out = [c for c in candidates if c.active and allowed_for_region(c.role, c.regions, need.region)
           and (c.name == need.user if need.user is not None else c.role == need.role)]
    return sorted(out, key=lambda c: c.user_id)


def pick_owner(need: OwnerNeed, candidates: Iterable[Candidate], turn: int = 1) -> OwnerChoice:
    """Decide the owner. `turn`: the pool's round-robin counter after this assignment (1, 2, 3 … from storage)."""
    pool = eligible(need, candidates)
    where = need.region or "no region"
    if not pool:
        if need.user is not None:
            why = f"user {need.user} is unknown, inactive or not allowed in {where}"
        else:
            why = f"no active {need.role} allowed in {where}"
        return OwnerChoice(None, None, need.rule_id, why)
    if need.user is not None:
        c = pool[0]
        return OwnerChoice(c.user_id, c.name, need.rule_id, f"named user {c.name}")
    if need.strategy == "least_loaded":
        c = min(pool, key=lambda x: (x.load, x.user_id))
        return OwnerChoice(c.user_id, c.name, need.rule_id, _least_reason(need, len(pool), c.load))
    c = pool[(max(turn, 1) - 1) % len(pool)]
    return OwnerChoice(c.user_id, c.name, need.rule_id,
                       f"round-robin turn {turn} of {len(pool)} {need.role}s in {where}")


def pick_owners(need: OwnerNeed, candidates: Sequence[Candidate], first_turn: int, count: int) -> list[OwnerChoice]:
    """`count` orders entering the same pool at once (an intake batch): turns `first_turn`, `first_turn + 1`, …; a
    least-loaded pick adds one to its member's load before the next, as separate assignments would."""
    pool = eligible(need, candidates)  # once per batch, not per order
    if need.strategy != "least_loaded" or need.user is not None or not pool:
        return [pick_owner(need, pool, first_turn + i) for i in range(count)]
    loads = {c.user_id: c.load for c in pool}
    out = []
    for _ in range(count):
        c = min(pool, key=lambda x: (loads[x.user_id], x.user_id))
        out.append(OwnerChoice(c.user_id, c.name, need.rule_id, _least_reason(need, len(pool), loads[c.user_id])))
        loads[c.user_id] += 1
    return out


def _least_reason(need: OwnerNeed, size: int, load: int) -> str:
    return f"least loaded of {size} {need.role}s in {need.region or 'no region'}: {load} open orders"


_WORDS = {
    "zh": {"title": "负责人分配（阶段 {stage}，首个命中的规则生效）", "matched": "命中", "not_matched": "未命中",
           "skipped": "跳过", "none": "没有规则：负责人保持不变", "user": "指定用户 {v}",
           "pool": "{region}{role}轮流分配", "pool_least": "{region}{role}中在办订单最少者"},
    "en": {"title": "Owner (stage {stage}; the first matching row wins)", "matched": "matched",
           "not_matched": "not matched", "skipped": "skipped", "none": "no row: the owner stays as it is",
           "user": "user {v}", "pool": "round-robin among {role}s of {region}",
           "pool_least": "the {role} of {region} with the fewest open orders"},
}


def explain_owner_lines(rows: Sequence[COwner], stage: Stage, region: str | None, base: str | None,
                        product_types: Iterable[str], language: str = "zh") -> list[str]:
    """The `owners:` rows considered for an order in `stage`, as `rules explain` shows them."""
    w = _WORDS.get(language, _WORDS["zh"])
    product_types = tuple(product_types)
    need, considered = owner_need(rows, stage, region, base, product_types)
    out = [f"[{w['title'].format(stage=stage.value)}]"]
    for row, ok in considered:
        mark, status = ("✓", w["matched"]) if ok else (("·", w["skipped"]) if ok is None else ("✗", w["not_matched"]))
        out.append(f"  {mark} {row.id} — {status}: {row.condition()}  "
                   f"(region = {region or '-'}, base = {base or '-'}, product_types = {list(product_types)})")
    if need is None:
        out.append(f"  → {w['none']}")
    elif need.user is not None:
        out.append(f"  → {w['user'].format(v=need.user)} ({need.rule_id})")
    else:
        key = "pool_least" if need.strategy == "least_loaded" else "pool"
        out.append(f"  → {w[key].format(role=role_name(need.role or '', language), region=region or '-')}"
                   f" ({need.rule_id})")
    return out
