"""The stage machine as a table: forward one stage at a time, or cancel; end states go nowhere."""

from __future__ import annotations

import pytest

from engine.stages import Stage, TransitionError, allowed_next, check_transition, label

S = Stage


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        (S.PENDING_CONFIRM, "designing", True),
        (S.DESIGNING, "ordered", True),
        (S.ORDERED, "in_production", True),
        (S.IN_PRODUCTION, "shipped", True),
        (S.SHIPPED, "awaiting_install", True),
        (S.AWAITING_INSTALL, "completed", True),
        (S.DESIGNING, "cancelled", True),
        (S.SHIPPED, "cancelled", True),
        (S.DESIGNING, "shipped", False),  # skipping stages
        (S.ORDERED, "designing", False),  # going back
        (S.DESIGNING, "designing", False),  # standing still
        (S.COMPLETED, "cancelled", False),  # end states are final
        (S.CANCELLED, "designing", False),
        (S.PENDING_CONFIRM, "flying", False),  # not a stage at all
    ],
)
def test_transitions(current: Stage, target: str, ok: bool) -> None:
    if ok:
        assert check_transition(current, target) is Stage(target)
    else:
        with pytest.raises(TransitionError) as err:
            check_transition(current, target)
        for allowed in allowed_next(current):
            assert allowed.value in str(err.value)


def test_error_names_the_allowed_next_stages() -> None:
    with pytest.raises(TransitionError) as err:
        check_transition("designing", "shipped")
    assert str(err.value) == "cannot move from designing to shipped; allowed next stages: ordered, cancelled"
    assert err.value.allowed == (S.ORDERED, S.CANCELLED)


def test_end_states_say_so() -> None:
    with pytest.raises(TransitionError, match="none \\(end state\\)"):
        check_transition("completed", "cancelled")


@pytest.mark.parametrize(("stage", "zh", "en"), [(S.DESIGNING, "设计中", "Designing"), (S.SHIPPED, "已发货", "Shipped")])
def test_labels(stage: Stage, zh: str, en: str) -> None:
    assert label(stage) == zh
    assert label(stage, "en") == en
