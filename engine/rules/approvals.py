"""Who may decide an approval: the role, the region, and never the person who asked (the four-eyes rule)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from engine.rules.decisions import ApprovalNeed


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    code: str  # ok | own_request | wrong_role | wrong_region

    def message(self, language: str = "zh") -> str:
        return _MESSAGES[language if language in _MESSAGES else "zh"][self.code]


_MESSAGES = {
    "zh": {
        "ok": "可以审批",
        "own_request": "不能审批自己提交的申请",
        "wrong_role": "您没有该审批所需的角色",
        "wrong_region": "该审批属于其他区域",
    },
    "en": {
        "ok": "allowed",
        "own_request": "you cannot approve your own request",
        "wrong_role": "you do not hold the role this approval needs",
        "wrong_region": "this approval belongs to another region",
    },
}


def can_decide(need: ApprovalNeed, user: str, role: str, regions: Collection[str], requested_by: str | None = None) -> Verdict:
    """Pure check run before any approval is recorded; admins do not bypass the four-eyes rule."""
    requester = requested_by if requested_by is not None else need.requested_by
    if requester is not None and requester == user:
        return Verdict(False, "own_request")
    if role != need.role:
        return Verdict(False, "wrong_role")
    if need.region is not None and need.region not in regions:
        return Verdict(False, "wrong_region")
    return Verdict(True, "ok")
