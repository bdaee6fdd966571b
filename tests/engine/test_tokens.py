"""Action tokens: short, signed, and refused when forged or malformed."""

from __future__ import annotations

import pytest

from engine.tokens import MAX_TOKEN_BYTES, Action, ActionToken, TokenError, sign, verify, version_ref

KEY = b"k" * 32


@pytest.mark.parametrize("action", list(Action))
def test_round_trip_and_size(action: Action) -> None:
    token = sign(KEY, action, 2**53, "abcdefghij")
    assert len(token.encode()) <= MAX_TOKEN_BYTES
    assert verify(KEY, token) == ActionToken(action, 2**53, "abcdefghij")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed"),
        ("ap.1.x", "malformed"),
        ("ap.1.x.y.z", "malformed"),
        ("x" * 65, "malformed"),
        (sign(b"other", Action.APPROVE, 1, "v"), "forged"),
        (sign(KEY, Action.APPROVE, 1, "v").replace("ap.", "rj."), "forged"),  # action swapped
        (sign(KEY, Action.APPROVE, 1, "v").replace(".1.", ".2."), "forged"),  # id swapped
        (sign(KEY, Action.APPROVE, 1, "v").replace(".v.", ".w."), "forged"),  # version swapped
    ],
)
def test_refused(token: str, reason: str) -> None:
    with pytest.raises(TokenError) as err:
        verify(KEY, token)
    assert err.value.reason == reason


def test_unknown_action_with_valid_mac_is_malformed() -> None:
    from engine.tokens import _mac

    body = "zz.1.v"
    with pytest.raises(TokenError, match="malformed"):
        verify(KEY, f"{body}.{_mac(KEY, body)}")


def test_bad_inputs_and_version_ref() -> None:
    with pytest.raises(ValueError):
        sign(b"", Action.APPROVE, 1)
    with pytest.raises(ValueError):
        sign(KEY, Action.APPROVE, 1, "has.dot")
    assert version_ref("0123456789abcdef0123") == "0123456789"
