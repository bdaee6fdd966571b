"""Refund use cases on the real repository: the matrix's first step, proof by photo with OCR and the carrier's word,
the finance approval through the one decide use case, independence of refunds, and refused files."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from engine.approvals import Verdict
from engine.carriers.rules import WaybillPatternRule
from engine.refunds import DEFAULT_PATTERNS, ProofVerdict, RefundState, ReturnStatus, WaybillPattern
from handlers.approvals import Deciders, decide
from handlers.chat_ports import UserInfo
from handlers.refunds import (Refund, RefundDeps, RefundError, attach_proof, decide_refund, follow_ups,
                              request_refund, waybill_patterns)
from storage.models import ApprovalRow, StageTransitionRow
from storage.proof_files import ProofDirectory
from storage.refunds_repo import SqlRefunds
from tests.handlers.conftest import World

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200


class FakeOcr:
    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    async def read(self, data: bytes) -> str:
        self.calls += 1
        return self.text


class FakeTracker:
    carriers = ("sf", "deppon")

    def __init__(self, statuses: dict[str, ReturnStatus]) -> None:
        self.statuses = statuses

    async def status(self, carrier: str, waybill: str) -> ReturnStatus | None:
        return self.statuses.get(waybill)


@pytest.fixture
def proofs(tmp_path: Path) -> ProofDirectory:
    return ProofDirectory(tmp_path / "proofs")


def deps_for(world: World, proofs: ProofDirectory, ocr: str = "", statuses: dict | None = None) -> RefundDeps:
    repo = SqlRefunds(world.engine)
    return RefundDeps(repo, repo, lambda: world.rules, proofs, FakeOcr(ocr), FakeTracker(statuses or {}),
                      world.notifier, after_sales="400-800-1234")


async def shipped(world: World, external_id: str, *, amount: str, days_ago: float, delivered_days_ago: float | None
                  = None) -> int:
    stage = "awaiting_install" if delivered_days_ago is not None else "shipped"
    oid = await world.order(external_id, amount=amount, stage=stage)
    now = world.clock.now()
    rows = [{"order_id": oid, "at": now - timedelta(days=days_ago), "from_stage": "in_production",
             "to_stage": "shipped", "actor": "system", "reason": ""}]
    if delivered_days_ago is not None:
        rows.append({"order_id": oid, "at": now - timedelta(days=delivered_days_ago), "from_stage": "shipped",
                     "to_stage": "awaiting_install", "actor": "carrier", "reason": ""})
    async with world.engine.begin() as conn:
        await conn.execute(insert(StageTransitionRow.__table__), rows)
    return oid


async def staff_refund(world: World, deps: RefundDeps, order_id: int, amount: str | None, reason: str,
                       by: str) -> Refund:
    """A refund asked for through the API by staff `by` (no chat to notify)."""
    return await request_refund(deps, str(order_id), amount=amount, reason=reason, requested_by=by, source="api",
                                now=world.clock.now())


async def finance_decides(world: World, deps: RefundDeps, approval_id: int, who: UserInfo, verdict: Verdict,
                          comment: str) -> None:
    """The finance decision through the one decide use case, with the refunds' follow-ups as every entry point."""
    deciders = Deciders(world.repo, world.rules, world.notifier, follow_ups(deps))
    await decide(deciders, approval_id, who, verdict, comment, world.clock.now())


async def customer_refund(world: World, deps: RefundDeps, order_ref: str, reason: str, customer: str, *,
                          chat: str | None = "c1") -> Refund:
    """The whole order's refund asked for by `customer` in a chat; told there on Telegram `chat` unless None."""
    return await request_refund(deps, order_ref, amount=None, reason=reason, requested_by=f"customer:{customer}",
                                source="chat", now=world.clock.now(), notify=("telegram", chat) if chat else None)


async def told(world: World, chat: str = "c1") -> list[str]:
    """What the outbox has sent to `chat` once it is drained."""
    await world.drain()
    return [s.text for s in world.channel.sent if s.ref.chat_id == chat]


async def test_unshipped_refund_is_approved_at_once_and_cancels_the_order(world: World, proofs):
    deps = deps_for(world, proofs)
    oid = await world.order("TM1", amount="1500.00", stage="designing")
    r = await customer_refund(world, deps, "tmall:TM1", "不想要了", "C-TM1")
    assert (r.state, r.automatic, r.rule_id, r.amount) == (RefundState.APPROVED, True, "refund-not-shipped",
                                                            Decimal("1500.00"))
    assert (await deps.orders.get(str(oid))).order.stage.value == "cancelled"
    said = await told(world)
    assert len(said) == 1 and "已通过" in said[0] and "TM1" in said[0]


async def test_partial_unshipped_refund_keeps_the_order(world: World, proofs):
    deps = deps_for(world, proofs)
    oid = await world.order("TM2", amount="1500.00", stage="designing")
    r = await staff_refund(world, deps, oid, "300", "少一件", "user:1")
    assert r.state is RefundState.APPROVED
    assert (await deps.orders.get(str(oid))).order.stage.value == "designing"
    with pytest.raises(RefundError) as exc:  # 1500 - 300 left
        await staff_refund(world, deps, oid, "1200.01", "x", "user:1")
    assert exc.value.code == "amount_exceeds_order"


async def test_shipped_refund_waits_for_proof_then_the_carrier_confirms(world: World, proofs):
    deps = deps_for(world, proofs, ocr="顺丰速运\nSF 1234 5678 9012 3\n退货",
                    statuses={"SF1234567890123": ReturnStatus("in_transit", True)})
    oid = await shipped(world, "TM3", amount="1800.00", days_ago=2)
    r = await customer_refund(world, deps, str(oid), "尺寸不对", "C-TM3")
    assert (r.state, r.rule_id) == (RefundState.WAITING_PROOF, "refund-in-transit")
    world.clock.advance(hours=1)
    res = await attach_proof(deps, r.id, JPEG, "customer:C-TM3", world.clock.now())
    assert res.verdict is ProofVerdict.CONFIRMED and res.waybill == "SF1234567890123"
    assert res.refund.state is RefundState.APPROVED and res.refund.automatic
    assert res.refund.proof["tracking_status"] == "in_transit"
    assert len(list((proofs.root / str(r.id)).iterdir())) == 1
    assert (await deps.orders.get(str(oid))).order.stage.value == "cancelled"
    history = [h["action"] for h in await deps.refunds.history(r.id)]
    assert history == ["refund.requested", "refund.proof", "refund.approved"]
    said = await told(world)
    assert len(said) == 3 and "运单" in said[0] and "已通过" in said[-1]


@pytest.mark.parametrize("ocr,statuses,verdict", [
    ("模糊一片", {}, ProofVerdict.UNREADABLE),
    ("YT1234567890123", {}, ProofVerdict.WRONG_CARRIER),
    ("SF1234567890123", {}, ProofVerdict.NOT_MOVING),
    ("SF1234567890123", {"SF1234567890123": ReturnStatus("in_transit", False)}, ProofVerdict.NOT_MOVING),
])
async def test_doubtful_proof_goes_to_a_person(world: World, proofs, ocr, statuses, verdict):
    deps = deps_for(world, proofs, ocr=ocr, statuses=statuses)
    oid = await shipped(world, "TM4", amount="900.00", days_ago=5, delivered_days_ago=3)
    r = await customer_refund(world, deps, str(oid), "质量问题", "C-TM4", chat=None)
    assert r.rule_id == "refund-within-7d"
    res = await attach_proof(deps, r.id, JPEG, "customer:C-TM4", world.clock.now())
    assert (res.verdict, res.refund.state) == (verdict, RefundState.VERIFYING)
    assert res.refund.proof["ocr_text"] == ocr and res.refund.proof["file"]
    done = await decide_refund(deps, r.id, True, "finance-li", "看过照片，可以", world.clock.now())
    assert (done.state, done.automatic) == (RefundState.APPROVED, False)


async def test_late_refund_is_refused_with_the_after_sales_contact(world: World, proofs):
    deps = deps_for(world, proofs)
    oid = await shipped(world, "TM5", amount="900.00", days_ago=20, delivered_days_ago=10)
    r = await customer_refund(world, deps, str(oid), "不喜欢", "C-TM5")
    assert (r.state, r.rule_id) == (RefundState.REJECTED, "refund-after-7d")
    assert "400-800-1234" in (await told(world))[0]
    assert (await deps.orders.get(str(oid))).order.stage.value == "awaiting_install"


async def _finance(world: World) -> UserInfo:
    uid = await world.user("fin", "finance", tg="900")
    return UserInfo(uid, "fin", "finance")


async def test_over_threshold_goes_to_finance_and_finance_approves(world: World, proofs):
    deps = deps_for(world, proofs)
    fin = await _finance(world)
    oid = await world.order("TM6", amount="2600.00", stage="designing")
    r = await customer_refund(world, deps, str(oid), "取消", "C-TM6")
    assert r.state is RefundState.WAITING_FINANCE and r.approval_id
    async with world.engine.connect() as conn:
        a = (await conn.execute(select(ApprovalRow.__table__))).one()
    assert (a.kind, a.required_role, a.requested_by, a.order_version) == ("refund", "finance", "customer:C-TM6",
                                                                          f"refund:{r.id}")
    await world.drain()
    card = [s for s in world.channel.sent if s.ref.chat_id == "900"]
    assert len(card) == 1
    shown = card[0].message.card.as_text()  # the finance card in people's words: no state keys, no API paths
    assert "申请时阶段 设计中 · 发货 — · 签收 —" in shown and "designing" not in shown and "/api/" not in shown
    await finance_decides(world, deps, r.approval_id, fin, Verdict.APPROVE, "")
    done = await deps.refunds.refund(r.id)
    assert done.state is RefundState.APPROVED and not done.automatic
    assert (await deps.orders.get(str(oid))).order.stage.value == "cancelled"
    said = await told(world)
    assert len(said) == 2 and "财务" in said[0] and "财务已批准" in said[1]


async def test_finance_rejection_touches_only_its_refund(world: World, proofs):
    deps = deps_for(world, proofs)
    fin = await _finance(world)
    oid = await world.order("TM7", amount="8000.00", stage="designing")
    a = await staff_refund(world, deps, oid, "2500", "一", "user:77")
    b = await staff_refund(world, deps, oid, "2500", "二", "user:77")
    assert a.approval_id != b.approval_id
    await finance_decides(world, deps, a.approval_id, fin, Verdict.REJECT, "金额不符")
    assert (await deps.refunds.refund(a.id)).state is RefundState.REJECTED
    assert (await deps.refunds.refund(b.id)).state is RefundState.WAITING_FINANCE
    other = await world.repo.approval(b.approval_id)
    assert other.status.value == "pending"
    assert (await deps.orders.get(str(oid))).order.stage.value == "designing"
    await finance_decides(world, deps, b.approval_id, fin, Verdict.APPROVE, "")
    assert (await deps.refunds.refund(b.id)).state is RefundState.APPROVED


async def test_finance_cannot_approve_a_refund_they_requested(world: World, proofs):
    deps = deps_for(world, proofs)
    fin = await _finance(world)
    oid = await world.order("TM8", amount="3000.00", stage="designing")
    r = await staff_refund(world, deps, oid, None, "x", f"user:{fin.id}")
    from handlers.approvals import DecisionRefused
    with pytest.raises(DecisionRefused):
        await decide(Deciders(world.repo, world.rules, None, follow_ups(deps)), r.approval_id, fin, Verdict.APPROVE, "",
                     world.clock.now())


def _pdf() -> bytes:
    return b"%PDF-1.4\n" + b"0" * 1000


@pytest.mark.parametrize("data,code", [
    (b"hello, not an image", "unsupported_file"),
    (_pdf(), "unsupported_file"),  # a PDF, whatever it is named
    (JPEG + b"\x00" * (50 * 1024 * 1024), "file_too_large"),
])
async def test_bad_files_are_refused_and_nothing_is_stored(world: World, proofs, data, code):
    deps = deps_for(world, proofs, ocr="SF1234567890123")
    oid = await shipped(world, "TM9", amount="900.00", days_ago=1)
    r = await customer_refund(world, deps, str(oid), "x", "C", chat=None)
    with pytest.raises(RefundError) as exc:
        await attach_proof(deps, r.id, data, "customer:C", world.clock.now())
    assert exc.value.code == code
    assert not proofs.root.exists() or not any(proofs.root.rglob("*"))
    assert (await deps.refunds.refund(r.id)).state is RefundState.WAITING_PROOF
    assert deps.ocr.calls == 0


async def test_the_same_push_twice_is_one_refund(world: World, proofs):
    deps = deps_for(world, proofs)
    oid = await world.order("TM10", amount="500.00", stage="designing")
    kw = dict(amount="100", reason="x", requested_by="customer:C", source="taobao", source_ref="R1")
    a = await request_refund(deps, str(oid), now=world.clock.now(), **kw)
    b = await request_refund(deps, str(oid), now=world.clock.now(), **kw)
    assert a.id == b.id and len(await deps.refunds.of_order(oid)) == 1


async def test_rules_waybill_patterns_reach_the_proof_reading(world: World, proofs):
    """A number only the rules' `carriers.waybill_patterns` know is read from the photo and tracked (issue 15)."""
    from dataclasses import replace as dc_replace

    m = world.rules.model
    carriers = m.carriers.model_copy(update={"waybill_patterns": [
        WaybillPatternRule(carrier="deppon", regex=r"DP\d{10}")]})
    rules = dc_replace(world.rules, model=m.model_copy(update={"carriers": carriers}))
    repo = SqlRefunds(world.engine)
    deps = RefundDeps(repo, repo, lambda: rules, proofs, FakeOcr("德邦快递\nDP 1234 567 890"),
                      FakeTracker({"DP1234567890": ReturnStatus("in_transit", True)}), world.notifier)
    without = RefundDeps(repo, repo, lambda: world.rules)
    assert waybill_patterns(without) == DEFAULT_PATTERNS
    assert waybill_patterns(deps) == (*DEFAULT_PATTERNS, WaybillPattern("deppon", r"DP\d{10}"))
    oid = await shipped(world, "TM77", amount="900.00", days_ago=2)
    r = await customer_refund(world, deps, str(oid), "坏了", "C-TM77", chat=None)
    res = await attach_proof(deps, r.id, JPEG, "customer:C-TM77", world.clock.now())
    assert (res.verdict, res.waybill) == (ProofVerdict.CONFIRMED, "DP1234567890")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_finance_card_speaks_peoples_words(world: World, proofs, lang: str) -> None:
    """Stage, refund states, the proof's verdict and the carrier's status in words; times local; no API paths."""
    from dataclasses import replace as copy
    from datetime import UTC, datetime

    from handlers.refunds import Refund, finance_fields

    now = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)
    facts = {"stage": "shipped", "shipped_at": "2025-11-09T01:00:00+00:00", "delivered_at": None}
    refund = Refund(5, 1, "chat", None, Decimal("900.00"), "质量问题", (), RefundState.WAITING_FINANCE, "r1",
                    {"message": "", "facts": facts}, "customer:C1", now, now,
                    proof={"type": "jpeg", "bytes": 4096, "verdict": "confirmed", "waybill": "SF1234567890123",
                           "carrier": "sf", "ocr_text": "SF 1234", "tracking_status": "in_transit",
                           "towards_merchant": True})
    earlier = [copy(refund, id=3, state=RefundState.APPROVED, amount=Decimal("100.00"), proof=None)]
    text = "\n".join(f"{k}: {v}" for k, v in finance_fields(copy(deps_for(world, proofs), language=lang), refund,
                                                            earlier))
    expected = {"zh": ["已发货", "11-09 09:00", "#3 ¥100.00 已通过", "JPEG 4 KiB · 承运商已确认退件", "顺丰速运",
                       "运输中 · 正发往商家"],
                "en": ["Shipped", "11-09 09:00", "#3 ¥100.00 approved", "the carrier confirmed the return",
                       "SF Express", "in transit · on its way back to us"]}[lang]
    for piece in expected:
        assert piece in text, (piece, text)
    for raw in ("waiting_finance", "in_transit", "KiB · confirmed", "/api/", "shipped 2025", "→ merchant"):
        assert raw not in text, (raw, text)
