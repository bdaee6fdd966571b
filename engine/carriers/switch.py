"""A region's carrier switch as a rules edit: which `carriers.regions.<region>` entry to write, and its undo.

The switched-to carrier becomes the region's primary and the carrier it replaces its backup (so a failure of the new
one still falls back to the old). Undo writes back exactly the entry there was before — or removes the entry when
the region had none (it followed `carriers.default` and does so again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from engine.carriers.rules import CarrierChoice, CarrierId, CarrierRules
from engine.carriers.text import t

CARRIERS: tuple[str, ...] = get_args(CarrierId)


class SwitchRefused(ValueError):
    """Why a switch (or undo) is not made: `code` is forbidden | unknown_region | unknown_carrier | already | changed
    | not_found | undone | invalid; `str()` is English, `message(lang)` the sentence for people."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(t(f"switch.err.{code}", "en", **params))
        self.code, self.params = code, params

    def message(self, language: str) -> str:
        return t(f"switch.err.{self.code}", language, **self.params)


@dataclass(frozen=True, slots=True)
class Switch:
    region: str
    before: CarrierChoice | None  # the region's own entry before the switch; None: it had none (default applied)
    after: CarrierChoice | None  # the entry written; None: the entry removed (an undo back to the default)

    def entry(self) -> dict[str, str] | None:
        """The mapping written to `carriers.regions.<region>` (None: remove it)."""
        if self.after is None:
            return None
        return {"primary": self.after.primary, **({"backup": self.after.backup} if self.after.backup else {})}


def choice_json(c: CarrierChoice | None) -> dict[str, str | None] | None:
    return None if c is None else {"primary": c.primary, "backup": c.backup}


def choice_of(data: object) -> CarrierChoice | None:
    return None if not isinstance(data, dict) else CarrierChoice.model_validate(data)


def plan_switch(rules: CarrierRules, regions: frozenset[str] | set[str], region: str, carrier: str) -> Switch:
    """The edit that makes `carrier` the primary of `region` (one of the rules file's `regions`)."""
    if region not in regions:
        raise SwitchRefused("unknown_region", region=region, known="、".join(sorted(regions)) or "-")
    if carrier not in CARRIERS:
        raise SwitchRefused("unknown_carrier", carrier=carrier, known=", ".join(CARRIERS))
    own = rules.regions.get(region)
    current = own or rules.default
    if current.primary == carrier:
        raise SwitchRefused("already", region=region, carrier=carrier)
    backup = current.primary
    return Switch(region, own, CarrierChoice(primary=carrier, backup=backup))  # type: ignore[arg-type]


def plan_undo(rules: CarrierRules, done: Switch) -> Switch:
    """The edit that reverts `done`, refused when the region's entry is no longer what `done` wrote."""
    if rules.regions.get(done.region) != done.after:
        raise SwitchRefused("changed", region=done.region)
    return Switch(done.region, done.after, done.before)
