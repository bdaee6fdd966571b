"""Issue 11: package metadata setuptools keeps accepting after 2027-02 (an SPDX `license` string, PEP 639), and a
test summary that says why tests were skipped (`-rs` in the configured addopts), as README promises."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_string_not_a_table() -> None:
    assert isinstance(PYPROJECT["project"]["license"], str) and PYPROJECT["project"]["license"]
    assert not any("License ::" in c for c in PYPROJECT["project"].get("classifiers", []))  # PEP 639: not both
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])


def test_the_test_summary_says_why_tests_were_skipped() -> None:
    assert "-rs" in PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert "`-rs`" in (ROOT / "README.md").read_text(encoding="utf-8")
