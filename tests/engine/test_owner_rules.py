"""Engine tables for `owners:`: which row applies when an order enters a stage, and whom it picks from a pool."""

from __future__ import annotations

import pytest

from engine.rules import load_rules
from engine.rules.owners import Candidate, OwnerNeed, allowed_for_region, explain_owner_lines, pick_owner
from engine.stages import Stage
from tests.engine.rules_support import EXAMPLE_TEXT, order, refused

OWNERS = """
owners:
  - {id: sofa-hz, stage: designing, region: 华东, product: sofa, user: 李设计}
  - {id: design-hz-base, stage: designing, base: HZ, pool: {role: manager, strategy: least_loaded}}
  - {id: design-east, stage: designing, region: 华东, pool: {role: manager}}
  - {id: production, stage: in_production, pool: {role: supply_chain, strategy: round_robin}}
"""
RULES = load_rules(EXAMPLE_TEXT + OWNERS)


@pytest.mark.parametrize(("city", "skus", "stage", "base", "rule", "who"), [
    ("杭州", ("SOFA-1",), Stage.DESIGNING, "HZ", "sofa-hz", "user 李设计"),  # first matching row wins
    ("杭州", ("CUR-1",), Stage.DESIGNING, "HZ", "design-hz-base", "pool manager@华东 least_loaded"),
    ("杭州", ("CUR-1",), Stage.DESIGNING, "FS", "design-east", "pool manager@华东 round_robin"),
    ("广州", ("CUR-1",), Stage.DESIGNING, "FS", None, None),  # no row for 华南 in designing
    ("广州", ("CUR-1",), Stage.IN_PRODUCTION, "FS", "production", "pool supply_chain@华南 round_robin"),
    ("杭州", ("CUR-1",), Stage.SHIPPED, "HZ", None, None),  # no row for the stage: the owner stays
])
def test_which_row_applies(city: str, skus: tuple[str, ...], stage: Stage, base: str, rule: str | None,
                           who: str | None) -> None:
    need = RULES.owner_need_for(order(city=city, skus=skus), stage, base)
    assert (need.rule_id if need else None, need.describe() if need else None) == (rule, who)


def test_no_rows_asks_nothing() -> None:
    assert load_rules(EXAMPLE_TEXT).owner_need_for(order(), Stage.DESIGNING, "HZ") is None


POOL = OwnerNeed("r", Stage.DESIGNING, "华东", role="manager", strategy="round_robin")
EAST = [Candidate(3, "c", "manager", ("华东",)), Candidate(1, "a", "manager", ("华东",)),
        Candidate(2, "b", "manager", ("华东", "华南"))]


@pytest.mark.parametrize(("turn", "name"), [(1, "a"), (2, "b"), (3, "c"), (4, "a"), (0, "a")])
def test_round_robin_by_turn_in_user_id_order(turn: int, name: str) -> None:
    assert pick_owner(POOL, EAST, turn).name == name


@pytest.mark.parametrize(("loads", "name"), [((5, 2, 2), "b"), ((0, 0, 0), "a"), ((1, 9, 0), "c")])
def test_least_loaded_ties_to_lowest_id(loads: tuple[int, int, int], name: str) -> None:
    need = OwnerNeed("r", Stage.DESIGNING, "华东", role="manager", strategy="least_loaded")
    cands = [Candidate(i, n, "manager", ("华东",), load=ld) for i, n, ld in zip((1, 2, 3), "abc", loads)]
    choice = pick_owner(need, cands, 7)
    assert choice.name == name and "open orders" in choice.reason


def test_pool_skips_inactive_other_region_and_other_role() -> None:
    cands = [Candidate(1, "off", "manager", ("华东",), active=False), Candidate(2, "south", "manager", ("华南",)),
             Candidate(3, "fin", "finance", ("华东",)), Candidate(4, "ok", "manager", ("华东",))]
    assert [pick_owner(POOL, cands, t).name for t in (1, 2, 3)] == ["ok", "ok", "ok"]
    empty = pick_owner(POOL, cands[:3], 1)
    assert empty.user_id is None and "no active manager allowed in 华东" in empty.reason


@pytest.mark.parametrize(("cand", "picked"), [
    (Candidate(9, "李设计", "manager", ("华东",)), "李设计"),
    (Candidate(9, "李设计", "manager", ("华南",)), None),  # not allowed in the order's region
    (Candidate(9, "李设计", "manager", ("华东",), active=False), None),
    (Candidate(9, "李设计", "admin", ()), "李设计"),  # admins anywhere
    (Candidate(9, "别人", "manager", ("华东",)), None),
])
def test_named_user(cand: Candidate, picked: str | None) -> None:
    need = OwnerNeed("r", Stage.DESIGNING, "华东", user="李设计")
    assert pick_owner(need, [cand]).name == picked


@pytest.mark.parametrize(("role", "regions", "region", "ok"), [
    ("admin", (), None, True), ("manager", ("华东",), "华东", True), ("manager", ("华东",), "华南", False),
    ("manager", ("华东",), None, False), ("customer", ("华东",), "华东", False), ("customer", (), "华东", False),
    ("supply_chain", (), "华东", True), ("supply_chain", (), None, True),  # company-wide staff: anywhere
    ("supply_chain", ("华南",), "华东", False), ("manager", (), "华东", False),
])
def test_allowed_for_region(role: str, regions: tuple[str, ...], region: str | None, ok: bool) -> None:
    assert allowed_for_region(role, regions, region) is ok


@pytest.mark.parametrize(("row", "message"), [
    ("{id: x, stage: designing, region: 火星, user: a}", "unknown region '火星'"),
    ("{id: x, stage: designing, base: XX, user: a}", "unknown production base 'XX'"),
    ("{id: x, stage: designing, product: car, user: a}", "unknown product type 'car'"),
    ("{id: x, stage: completed, user: a}", "end state"),
    ("{id: x, stage: designing}", "exactly one of"),
    ("{id: x, stage: designing, user: a, pool: {role: manager}}", "exactly one of"),
    ("{id: x, stage: designing, pool: {role: manager, strategy: random}}", "round_robin"),
    ("{id: x, stage: designing, pool: {role: boss}}", "boss"),
    ("{id: x, stage: designing, user: a, colour: red}", "unknown field 'colour'"),
])
def test_bad_rows_are_located_errors(row: str, message: str) -> None:
    refused(EXAMPLE_TEXT + f"\nowners:\n  - {row}\n", message, "owners[0]")


def test_explain_names_the_row_and_the_pool() -> None:
    o = order(city="杭州", skus=("CUR-1",))
    lines = explain_owner_lines(RULES.owners, Stage.DESIGNING, "华东", "FS", RULES.product_types_of(o), "en")
    assert lines[0].startswith("[Owner (stage designing")
    assert any("✗ sofa-hz" in ln for ln in lines) and any("✓ design-east" in ln for ln in lines)
    assert lines[-1] == "  → round-robin among managers of 华东 (design-east)"
    zh = explain_owner_lines(RULES.owners, Stage.SHIPPED, "华东", "HZ", (), "zh")
    assert zh[-1] == "  → 没有规则：负责人保持不变"


def test_the_readme_and_example_owner_rows_load() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(owners:\n.*?)```", readme, re.S).group(1)
    assert len(load_rules(EXAMPLE_TEXT + "\n" + block).owners) == 3
    commented = EXAMPLE_TEXT.split("# owners:\n", 1)[1]
    uncommented = "owners:\n" + "".join(line[2:] + "\n" for line in commented.splitlines() if line.startswith("#   "))
    assert [r.id for r in load_rules(EXAMPLE_TEXT + "\n" + uncommented).owners] == ["sofa-east", "design-east",
                                                                                   "production"]


def test_a_batch_takes_consecutive_turns_and_counts_its_own_picks() -> None:
    from engine.rules.owners import pick_owners

    assert [c.name for c in pick_owners(POOL, EAST, 2, 4)] == ["b", "c", "a", "b"]
    least = OwnerNeed("r", Stage.DESIGNING, "华东", role="manager", strategy="least_loaded")
    cands = [Candidate(1, "a", "manager", ("华东",), load=2), Candidate(2, "b", "manager", ("华东",), load=0)]
    assert [c.name for c in pick_owners(least, cands, 1, 4)] == ["b", "b", "a", "b"]  # 2/0 → 2/1 → 2/2 → 3/2
