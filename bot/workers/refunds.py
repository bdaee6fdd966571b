"""The refund intake worker: Taobao refund pushes from the refund stream → handlers.refunds.request_refund.

The stream is a RedisIntakeQueue on its own keys (storage.keys.REFUND_*), so a push has the order intake's
guarantees: durable before it is answered, acknowledged only after the refund is stored, reclaimed from a crashed
worker, retried with backoff (the order may arrive after its refund), dead-lettered after `max_attempts`. The
request is idempotent by `(taobao, refund_id)`, so a redelivered push is one refund.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from bot.workers.stream_loop import StreamLoop, StreamWorker
from engine.refund_push import TaobaoRefund
from handlers.ports import Clock, IntakeEntry
from handlers.refunds import RefundDeps, RefundError, request_refund
from storage.dead_letters import SqlDeadLetters
from storage.intake_queue import RedisIntakeQueue

log = logging.getLogger("orderhub.refunds")


@dataclass
class RefundWorkerTotals:
    stored: int = 0
    ignored: int = 0
    retried: int = 0
    dead: int = 0


class RefundIntakeWorker(StreamWorker[RefundWorkerTotals]):
    def __init__(self, queue: RedisIntakeQueue, deps: RefundDeps, dead: SqlDeadLetters, clock: Clock, *,
                 consumer: str, max_attempts: int = 5, retry_backoff_s: float = 5.0, claim_idle_s: float = 30.0
                 ) -> None:
        self.queue, self.deps, self.clock = queue, deps, clock
        self.loop = StreamLoop("refund", queue, dead, clock, log, consumer=consumer, batch_size=50,
                               max_attempts=max_attempts, retry_backoff_s=retry_backoff_s, claim_idle_s=claim_idle_s)
        self.totals = RefundWorkerTotals()

    async def process(self, entry: IntakeEntry) -> None:
        push = TaobaoRefund.model_validate_json(entry.body)
        if not push.actionable:  # closed by the buyer, already paid out…: nothing for OrderHub to decide
            self.totals.ignored += 1
            return
        ref = await self._order_ref(push.tid)
        reason = push.reason or "淘宝退款"
        if push.oid:
            reason += f" (子订单 {push.oid})"
        await request_refund(self.deps, ref, amount=push.refund_fee, reason=reason[:500],
                             requested_by=f"customer:taobao:{push.tid}", source="taobao", source_ref=push.refund_id,
                             now=self.clock.now(), actor="taobao")
        self.totals.stored += 1

    async def _order_ref(self, tid: str) -> str:
        """The trade number is the order's external id: on the tmall channel, else taobao, else any channel."""
        for ref in (f"tmall:{tid}", f"taobao:{tid}"):
            if await self.deps.orders.get(ref, with_history=False) is not None:
                return ref
        by_number = getattr(self.deps.orders, "order_by_ref", None)
        view = await by_number(tid, external_only=True) if by_number is not None else None
        return str(view.order.id) if view is not None else f"tmall:{tid}"

    async def handle(self, entries: list[IntakeEntry]) -> None:
        await self.loop.each(self.totals, entries, self.process, _verdict, [])


def _verdict(exc: Exception) -> tuple[str, bool] | None:
    if isinstance(exc, ValidationError):  # verified at the edge; a change of format will not get better
        return f"invalid push: {exc}", True
    if isinstance(exc, RefundError):
        # no such order yet (it may come after its refund) or a refusal: tried again, then dead
        return f"{exc.code}: {exc}", exc.code not in ("order_not_found", "changed")
    if isinstance(exc, (OSError, ConnectionError)):
        raise exc
    return None
