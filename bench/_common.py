"""What the classifier benches share: the labelled notes, the bundled rules with another anomaly category set, and
the classifier before its fast path (the baseline bench/classify.py races), read from the project's history."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.settings import BUNDLED_RULES  # noqa: E402
from engine.rules import RuleSet, load_rules  # noqa: E402

# The last commit that kept the classifier before the fast path in the tree (tests/engine/lib_classifier_reference.py;
# the tests now hold its answers, tests/engine/data/lib_classifier_golden.json). A baseline is code that no longer
# runs in OrderHub, so it is read from git rather than kept as a second copy.
BASELINE_COMMIT = "809daf84ce4ca6b9d66d1264cd3e5c30af5ef0dc"
BASELINE_PATH = "tests/engine/lib_classifier_reference.py"


def labelled_notes() -> list[tuple[str, str]]:
    """bench/data/notes_labelled.tsv as (category, text) rows, in file order."""
    rows = []
    for line in (ROOT / "bench/data/notes_labelled.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            cat, text = line.split("\t", 1)
            rows.append((cat, text))
    return rows


def rules_with_categories(categories: dict[str, Any], name: str) -> RuleSet:
    """The bundled rules with another anomaly category set (and no trends, which name categories)."""
    yaml = YAML()
    data = yaml.load(BUNDLED_RULES.read_text(encoding="utf-8"))
    data["anomalies"]["categories"] = categories
    data["anomalies"]["trends"] = []
    out = io.StringIO()
    yaml.dump(data, out)
    return load_rules(out.getvalue(), name)


def baseline_classifier() -> ModuleType:
    """The classifier before the fast path (`classify_note`, `classify_text`, `analyse`), as a module loaded from
    BASELINE_COMMIT. Needs the git history of the checkout; says so and stops otherwise."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:{BASELINE_PATH}"],
                                check=True, capture_output=True, text=True, encoding="utf-8").stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"the baseline is read from git ({BASELINE_COMMIT[:7]}:{BASELINE_PATH}): {exc}") from exc
    spec = importlib.util.spec_from_loader("bench_baseline_classifier", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{BASELINE_COMMIT[:7]}:{BASELINE_PATH}", "exec"), module.__dict__)
    return module
