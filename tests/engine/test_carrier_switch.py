"""The pure part of a carrier switch: which `carriers.regions` entry is written, and which its undo writes back."""

from __future__ import annotations

import pytest

from engine.carriers.rules import CarrierChoice, CarrierRules
from engine.carriers.switch import SwitchRefused, plan_switch, plan_undo

RULES = CarrierRules(regions={"华南": CarrierChoice(primary="deppon", backup="sf")})
REGIONS = {"华东", "华南"}


def test_switch_makes_the_old_primary_the_backup() -> None:
    s = plan_switch(RULES, REGIONS, "华南", "kuaidi100")
    assert (s.before, s.after) == (RULES.regions["华南"], CarrierChoice(primary="kuaidi100", backup="deppon"))
    assert s.entry() == {"primary": "kuaidi100", "backup": "deppon"}
    east = plan_switch(RULES, REGIONS, "华东", "deppon")  # no entry of its own: it followed the default (sf)
    assert east.before is None and east.entry() == {"primary": "deppon", "backup": "sf"}


def test_undo_writes_back_what_there_was() -> None:
    east = plan_switch(RULES, REGIONS, "华东", "deppon")
    after = CarrierRules(regions={**RULES.regions, "华东": east.after})
    undo = plan_undo(after, east)
    assert undo.after is None and undo.entry() is None  # remove the entry: the default applies again
    south = plan_switch(RULES, REGIONS, "华南", "sf")
    assert plan_undo(CarrierRules(regions={"华南": south.after}), south).entry() == {"primary": "deppon",
                                                                                    "backup": "sf"}


@pytest.mark.parametrize("region,carrier,code", [
    ("西北", "sf", "unknown_region"), ("华南", "ups", "unknown_carrier"), ("华南", "deppon", "already"),
    ("华东", "sf", "already"), ("", "sf", "unknown_region")])
def test_refusals(region: str, carrier: str, code: str) -> None:
    with pytest.raises(SwitchRefused) as e:
        plan_switch(RULES, REGIONS, region, carrier)
    assert e.value.code == code and e.value.message("zh") and str(e.value)


def test_undo_refused_once_the_entry_changed() -> None:
    s = plan_switch(RULES, REGIONS, "华南", "kuaidi100")
    edited_since = CarrierRules(regions={"华南": CarrierChoice(primary="sf")})
    with pytest.raises(SwitchRefused) as e:
        plan_undo(edited_since, s)
    assert e.value.code == "changed"
