"""`orderhub rules explain` shows the `owners:` row that applies to the order's stage (issue 12.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.test_rules_cli import _isolated, _seed, app, runner  # noqa: F401 - the autouse fixture
from tests.engine.rules_support import EXAMPLE_TEXT

OWNERS = """
owners:
  - {id: design-south, stage: designing, region: 华南, user: 南设计}
  - {id: design-east, stage: designing, region: 华东, pool: {role: manager, strategy: least_loaded}}
"""


def test_explain_names_the_owner_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _seed(tmp_path, monkeypatch)
    rules = tmp_path / "owners.yaml"
    rules.write_text(EXAMPLE_TEXT + OWNERS, encoding="utf-8")
    en = runner.invoke(app, ["explain", str(ids["big"]), "--rules", str(rules), "-l", "en"])
    assert en.exit_code == 0, en.output
    assert "[Owner (stage designing; the first matching row wins)]" in en.output
    assert "✗ design-south — not matched: stage == designing and region == 华南" in en.output
    assert "→ the manager of 华东 with the fewest open orders (design-east)" in en.output
    zh = runner.invoke(app, ["explain", str(ids["big"]), "--rules", str(rules)])
    assert zh.exit_code == 0 and "✓ design-east — 命中" in zh.output and "华东经理中在办订单最少者" in zh.output
    plain = runner.invoke(app, ["explain", str(ids["big"]), "-l", "en"])  # no owners: rows, no section
    assert plain.exit_code == 0 and "[Owner" not in plain.output
