"""Machine edits of the rules text: ruamel round-trip of the edited section only — comments, key order and every
other line survive; a removal takes the mappings it empties with it; an invalid result is never written."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.settings import BUNDLED_RULES
from engine.rules import load_rules
from engine.rules.edit import MISSING, EditError, set_in_text
from handlers.rules_edit import RulesEditRefused
from storage.rules_file import RulesFileEditor

TEXT = '''a: 1
# about carriers
carriers:
  default: {primary: sf, backup: deppon}   # the usual
  by_goods:
    - {id: motors-east, when: {skus: ["MOTOR-*"], regions: [华东]}, primary: kuaidi100, backup: sf}
  regions:
    # south: slow in winter
    华南: {primary: deppon, backup: sf}
  waybill_patterns:
    - {carrier: jt, regex: "JT\\\\d{13}"}

# --- next section ---
z: [1, 2]   # kept as written
'''


def test_set_keeps_comments_order_and_other_lines() -> None:
    out = set_in_text(TEXT, ("carriers", "regions", "华南"), {"primary": "sf", "backup": "deppon"})
    assert out == TEXT.replace("华南: {primary: deppon, backup: sf}", "华南: {primary: sf, backup: deppon}")


def test_a_new_key_and_a_new_section() -> None:
    out = set_in_text(TEXT, ("carriers", "regions", "华北"), {"primary": "deppon"})
    assert "    华南: {primary: deppon, backup: sf}\n    华北: {primary: deppon}\n  waybill_patterns:" in out
    assert out.endswith("\n# --- next section ---\nz: [1, 2]   # kept as written\n")
    bundled = BUNDLED_RULES.read_text(encoding="utf-8")
    added = set_in_text(bundled, ("carriers", "regions", "华南"), {"primary": "deppon", "backup": "sf"})
    assert added.startswith(bundled) and added.endswith("carriers:\n  regions:\n    华南: {primary: deppon, backup: sf}\n")
    assert load_rules(added).model.carriers.choice("华南").primary == "deppon"


def test_removal_prunes_what_it_empties() -> None:
    out = set_in_text(TEXT, ("carriers", "regions", "华南"), MISSING)
    assert "  regions:" not in out and "华南" not in out and "# --- next section ---" in out
    assert set_in_text(out, ("carriers", "regions", "华南"), MISSING) == out  # nothing to remove
    only = set_in_text("a: 1\n\ncarriers:\n  regions:\n    华南: {primary: sf}\n# tail\nb: 2\n",
                       ("carriers", "regions", "华南"), MISSING)
    assert only == "a: 1\n\n# tail\nb: 2\n"


def test_not_a_mapping_is_an_edit_error() -> None:
    with pytest.raises(EditError):
        set_in_text("- a\n- b\n", ("carriers", "regions", "华南"), {"primary": "sf"})
    with pytest.raises(EditError):
        set_in_text("carriers: [1]\n", ("carriers", "regions", "华南"), {"primary": "sf"})
    with pytest.raises(EditError):
        set_in_text("a: [\n", ("carriers",), {"primary": "sf"})


async def test_the_editor_never_writes_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BUNDLED_RULES.read_text(encoding="utf-8"), encoding="utf-8")
    before = path.read_bytes()
    editor = RulesFileEditor(lambda: path, None, protected=[BUNDLED_RULES])
    with pytest.raises(RulesEditRefused, match="invalid"):
        await editor.set(("carriers", "regions", "华南"), {"primary": "ups"}, by="t", now=datetime.now(UTC))
    assert path.read_bytes() == before
    rules = await editor.set(("carriers", "regions", "华南"), {"primary": "deppon"}, by="t", now=datetime.now(UTC))
    assert rules.model.carriers.choice("华南").primary == "deppon" and path.read_text(encoding="utf-8") == rules.text
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".rules.yaml.*.tmp"))


async def test_concurrent_edits_never_lose_each_other(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BUNDLED_RULES.read_text(encoding="utf-8"), encoding="utf-8")
    editor = RulesFileEditor(lambda: path, None)
    now = datetime.now(UTC)
    await asyncio.gather(*(editor.set(("carriers", "regions", region), {"primary": "deppon"}, by="t", now=now)
                           for region in ("华东", "华南", "华北", "西南")))
    carriers = load_rules(path.read_text(encoding="utf-8")).model.carriers
    assert {r: c.primary for r, c in carriers.regions.items()} == dict.fromkeys(("华东", "华南", "华北", "西南"),
                                                                                "deppon")
