"""The dispatcher's button table: every button action belongs to exactly one chat flow."""

from __future__ import annotations

from handlers import queries
from handlers.dispatch import BUTTON_FLOWS


def test_no_button_action_is_owned_by_two_flows() -> None:
    seen: dict[str, str] = {}
    for flow in BUTTON_FLOWS:
        for action in flow.ACTIONS:
            assert action not in seen, f"{action} is {seen[action]}'s and {flow.__name__}'s"
            seen[action] = flow.__name__
    assert queries not in BUTTON_FLOWS  # the catch-all for the rest (order details, refresh, the board link)
