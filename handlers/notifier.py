"""The outbox notifier: rows first, messages second, so nothing is lost or doubled across restarts.

A row names its recipients (a user, or a role + region); each delivery to one chat is recorded as a message
reference before the row counts as sent, so a retried row skips chats it already reached and a later decision
can edit every copy. Platform errors are classified by the adapters: `RetryableSendError` (429 with its exact
`retry_after`, 5xx, timeouts) is retried with backoff, `PermanentSendError` (blocked, chat not found) is recorded
on the row and an admin is told.

A stall's breach also queues one `stall_mail` row: the copy to the owner's supervisor's mailbox, sent when a
`MailSender` is given and recorded as an ("email", user id) reference like a chat, so it goes once per row and
recipient. Grouped stall cards (`stall_group`) are sent like any card, or, for a group's update, edit the card
already sent. Quiet hours (engine/quiet.py) hold a person's chat alerts until the window ends, unless the alert's
ladder level rings through (`quiet_bypass_level`); the held row is deferred, never dropped, and the e-mail copy
ignores them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.approvals import Status
from engine.digest import ChartData, chart_from_payload, chart_summary
from engine.display import channel_name
from engine.quiet import may_ring, quiet_until
from engine.text import TEXT_BUDGET, message_kind, platform_name, role_name, shorten, t
from handlers import metrics
from handlers.carrier_switch import KIND as SWITCHED
from handlers.carrier_switch import degraded_card, switched_card
from handlers.carrier_trends import KIND as DEGRADED
from handlers.cards import approval_card, stall_card, trend_card
from handlers.note_cards import note_review_card
from handlers.notes import REVIEW_KIND
from handlers.chat import (
    Card,
    ChatChannel,
    ChatRef,
    Outgoing,
    OutgoingPhoto,
    PermanentSendError,
    RetryableSendError,
    send_photo_or_text,
)
from handlers.chat_ports import ChatRepo, Identity, NewOutbox, OutboxItem, UserInfo
from handlers.alert_groups import GROUP_KIND, group_entries, render_group
from handlers.mail import MAIL_PLATFORM, MailSender, breach_mail
from handlers.ports import Clock
from handlers.rate_limit import ChatRateLimiter
from handlers.send_attempts import AttemptedSends, SendAttempts
from handlers.stalls import KIND, MAIL_KIND

log = logging.getLogger(__name__)

INLINE_TRIES = 6  # tries per message within one pass; then the row waits for a later pass
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0
MAX_ROW_ATTEMPTS = 20  # passes before a row is given up as failed (and an admin told)
INLINE_WAIT_MAX_S = 10.0  # a longer flood wait defers the row (due_at = now + retry_after) instead of blocking others


def backoff(attempt: int) -> float:
    return min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S)


class _StillRetryable(Exception):
    def __init__(self, error: RetryableSendError) -> None:
        super().__init__(str(error))
        self.error = error


def _rules_invalid(payload: Mapping[str, Any], lang: str) -> str:
    error = payload.get("error_zh" if lang == "zh" else "error") or payload.get("error", "")
    return t("admin.rules_invalid", lang, path=payload.get("path", ""), error=shorten(str(error), 3000))


def _dead_letter(payload: Mapping[str, Any], lang: str) -> str:
    return t("admin.dead_letter", lang, channel=channel_name(str(payload.get("channel", "?")), lang), attempts=payload.get("attempts", "?"),
             entry_id=payload.get("entry_id", "?"), error=shorten(str(payload.get("error", "")), 500))


# Alerts written by storage (dead letters, rejected rules files) carry facts, not text: worded here, per language.
_ADMIN_ALERTS: dict[str, Callable[[Mapping[str, Any], str], str]] = {
    "rules_invalid": _rules_invalid, "dead_letter": _dead_letter}


class Notifier:
    """Delivers due outbox rows through the chat channels. `run_once` is one pass; `run` loops until stopped."""

    def __init__(
        self,
        repo: ChatRepo,
        channels: Mapping[str, ChatChannel],
        clock: Clock,
        *,
        token_key: bytes,
        language: str = "zh",
        timezone: str = "Asia/Shanghai",
        limiter: ChatRateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        mailer: MailSender | None = None,
        attempts: SendAttempts | None = None,
        chart_renderer: Callable[[ChartData, str], bytes] | None = None,
        quiet_bypass_level: Callable[[], int | None] = lambda: 2,
    ) -> None:
        self.repo = repo
        self.quiet_bypass_level = quiet_bypass_level  # read per row: the rules may have been reloaded
        self.chart_renderer = chart_renderer  # ChartData -> PNG (bot/digest_chart.py); None: digests stay text
        self.channels = channels
        self.clock = clock
        self.token_key = token_key
        self.language = language
        self.timezone = timezone
        self.sleep = sleep
        self.mailer = mailer
        self.attempts = AttemptedSends(attempts, clock.now) if attempts is not None else None
        self.limiter = limiter or ChatRateLimiter(sleep=sleep)
        self._lock = asyncio.Lock()  # one pass at a time per process: the sweep and immediate deliveries

    # --- entry points ---------------------------------------------------------------------------------------------

    async def run_once(self, limit: int = 100) -> int:
        """Deliver the rows due now; return how many rows were handled.

        With no chat platform configured in this process nothing is touched: the rows wait for one that has.
        """
        if not self.channels:
            return 0
        items = await self.repo.due_outbox(self.clock.now(), limit)
        for item in items:
            await self._handle(item)
        return len(items)

    async def deliver_ids(self, outbox_ids: Sequence[int]) -> None:
        """Deliver these rows now (a decision's card edits), if still pending."""
        for outbox_id in outbox_ids:
            item = await self.repo.outbox_item(outbox_id)
            if item is not None and item.status == "pending":
                await self._handle(item)

    async def run(self, stop: asyncio.Event, poll_s: float = 1.0) -> None:
        """Sweep until `stop` is set; errors in one pass are logged and the next pass retries."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                handled = 0
            if handled == 0:
                try:
                    await asyncio.wait_for(stop.wait(), poll_s)
                except TimeoutError:
                    pass

    # --- one row --------------------------------------------------------------------------------------------------

    async def _handle(self, item: OutboxItem) -> None:
        async with self._lock:
            fresh = await self.repo.outbox_item(item.id)
            if fresh is None or fresh.status != "pending":
                return
            try:
                if fresh.kind == "approval_outcome":
                    await self._edit_approval_cards(fresh)
                elif fresh.kind == GROUP_KIND and fresh.payload.get("mode") == "edit":
                    await self._edit_group_card(fresh)
                else:
                    await self._send_row(fresh)
            except _StillRetryable as exc:
                await self._retry_later(fresh, str(exc.error), exc.error.retry_after)
            except Exception as exc:  # a broken row must not block the rows behind it: back off, then give up
                log.exception("outbox row %s (%s) failed", fresh.id, fresh.kind)
                await self._retry_later(fresh, f"{type(exc).__name__}: {exc}", None)

    async def _retry_later(self, item: OutboxItem, error: str, retry_after: float | None) -> None:
        if item.attempts + 1 >= MAX_ROW_ATTEMPTS:
            await self._fail(item, f"gave up after {item.attempts + 1} passes: {error}")
            return
        delay = retry_after if retry_after is not None else backoff(item.attempts)
        await self.repo.mark_retry(item.id, self.clock.now() + timedelta(seconds=delay), shorten(error, 500))

    async def _fail(self, item: OutboxItem, error: str) -> None:
        metrics.NOTIFY_FAILED.labels(platform="-").inc()
        now = self.clock.now()
        await self.repo.mark_failed(item.id, shorten(error, 500), now)
        await self._tell_admin(item, "-", error)

    async def _tell_admin(self, item: OutboxItem, chat: str, error: str, who: str | None = None) -> None:
        """`chat` keys the notice (one per row and chat); `who` names the recipient in people's words."""
        if item.kind == "admin_notice":  # never loop: a notice that cannot reach an admin is only logged
            log.error("admin notice %s undeliverable: %s", item.id, error)
            return
        who = who or (t("admin.every_recipient", self.language) if chat == "-" else chat)  # "-": the row as a whole
        text = t("admin.send_failed", self.language, chat=who, kind=message_kind(item.kind, self.language),
                 error=shorten(error, 300))
        notice = NewOutbox(f"notice:sendfail:{item.id}:{chat}", "admin_notice", self.clock.now(), {"text": text},
                           recipient_role="admin")
        await self.repo.enqueue([notice], self.clock.now())

    # --- recipients and content -----------------------------------------------------------------------------------

    async def _addressees(self, item: OutboxItem) -> list[UserInfo]:
        """The people a row is for: one user, or everyone holding its role (and region)."""
        if item.recipient_role is not None and item.recipient_user_id is None:
            return await self.repo.users_with_role(item.recipient_role, item.recipient_region)
        user_id = item.recipient_user_id if item.recipient_user_id is not None else item.payload.get("user_id")
        user = await self.repo.user(int(user_id)) if user_id is not None else None
        return [user] if user is not None else []

    async def _recipients(self, item: OutboxItem, users: Sequence[UserInfo]) -> list[Identity]:
        if "chat_id" in item.payload and "platform" in item.payload:  # a row addressed to one chat directly
            return [Identity(0, str(item.payload["platform"]), "", str(item.payload["chat_id"]))]
        identities = await self.repo.identities_of([u.id for u in users]) if users else []
        seen: set[tuple[str, str]] = set()
        out = []
        for ident in identities:
            if ident.chat_id and ident.platform in self.channels and (ident.platform, ident.chat_id) not in seen:
                seen.add((ident.platform, ident.chat_id))
                out.append(ident)
        return out

    async def _render(self, item: OutboxItem) -> tuple[Card | None, str, int | None] | None:
        """(card, text, approval_id) for a row, or None when the row no longer needs sending."""
        lang, tz = self.language, self.timezone
        if item.kind == "approval_request":
            approval = await self.repo.approval(int(item.payload["approval_id"]))
            if approval is None or approval.status != Status.PENDING:
                return None  # decided before it went out: nothing to ask any more
            view = await self.repo.order(approval.order_id)
            if view is None:
                return None
            extra = item.payload.get("fields") or ()  # what a refund request brings to its card
            return approval_card(approval, view, self.token_key, lang, tz, extra), "", approval.id
        if item.kind == "stall_alert":
            view = await self.repo.order(int(item.payload["order_id"]))
            if view is None or view.order.stage.value != item.payload.get("stage"):
                return None  # the order moved on before the alert went out
            overdue = timedelta(seconds=int(item.payload.get("overdue_s", 0)))
            card = stall_card(view, item.id, int(item.payload.get("level", 0)), overdue, self.token_key, lang, tz,
                              levels=item.payload.get("levels"), role=item.payload.get("role"),
                              roles=item.payload.get("roles"))
            return card, "", None
        if item.kind == MAIL_KIND:
            view = await self.repo.order(int(item.payload["order_id"]))
            if view is None or view.order.stage.value != item.payload.get("stage"):
                return None
            overdue = timedelta(seconds=int(item.payload.get("overdue_s", 0)))
            return stall_card(view, item.id, 0, overdue, self.token_key, lang, tz, role="owner"), "", None
        if item.kind == GROUP_KIND:
            group = await self.repo.alert_group(int(item.payload["group_id"]))
            entries = await group_entries(self.repo, group, self.clock.now()) if group is not None else []
            if group is None or not entries:
                return None  # everything on it was handled before it went out
            return render_group(group, entries, self.token_key, lang), "", None
        if item.kind == "trend_alert":
            return trend_card(item.payload, lang), "", None
        if item.kind == REVIEW_KIND:  # a low-confidence exception note, for a person to classify
            return note_review_card(item.payload, self.token_key, lang), "", None
        if item.kind == DEGRADED:
            return degraded_card(item.id, item.payload, self.token_key, lang), "", None
        if item.kind == SWITCHED:
            return switched_card(item.id, item.payload, self.token_key, lang), "", None
        if item.kind in _ADMIN_ALERTS:
            return None, shorten(_ADMIN_ALERTS[item.kind](item.payload, lang), TEXT_BUDGET), None
        # plain-text rows (the morning digest, admin notices): composed within TEXT_BUDGET when queued
        text = str(item.payload.get("text", ""))
        if not text:
            raise ValueError(f"outbox row of kind {item.kind!r} has nothing to say")  # retried, then an admin is told
        return None, shorten(text, TEXT_BUDGET), None

    async def _send_row(self, item: OutboxItem) -> None:
        rendered = await self._render(item)
        if rendered is None:
            await self.repo.mark_sent(item.id, self.clock.now())
            return
        card, text, approval_id = rendered
        users = await self._addressees(item)
        if item.kind == MAIL_KIND and (self.mailer is None or not any(u.email for u in users)):
            why = "no SMTP configured" if self.mailer is None else "no e-mail address for the supervisor"
            await self.repo.mark_sent(item.id, self.clock.now(), error=f"{why}: e-mail copy not sent")
            return
        quiet_until_at, chat_users = self._quiet(item, users)
        recipients = await self._recipients(item, chat_users) if item.kind != MAIL_KIND else []
        mail_to = self._mail_recipients(item, users)
        if not recipients and not mail_to and quiet_until_at is not None:
            await self.repo.defer_outbox(item.id, quiet_until_at, "quiet hours")  # delivered when they end
            return
        if not recipients and not mail_to:
            # Someone may link their chat soon (/link): tell an admin now, keep trying for a while, then give up.
            error = (f"no linked recipient for {item.recipient_role or item.recipient_user_id}"
                     f"{' / ' + item.recipient_region if item.recipient_region else ''}")
            if item.attempts == 0:
                region = f" · {item.recipient_region}" if item.recipient_region else ""
                who = role_name(item.recipient_role, self.language) if item.recipient_role else "#" + str(
                    item.recipient_user_id)
                await self._tell_admin(item, "-", t("admin.no_recipient", self.language, who=who + region))
            if item.attempts + 1 >= MAX_ROW_ATTEMPTS:
                await self.repo.mark_failed(item.id, error, self.clock.now())
            else:
                await self.repo.mark_retry(item.id, self.clock.now() + timedelta(seconds=backoff(item.attempts)),
                                           error)
            return
        done = {(r.platform, r.chat_id) for r in await self.repo.refs_of_outbox(item.id)}
        delivered = len(done)
        permanent: list[str] = []
        mailed, mail_retry = await self._send_mails(item, card, mail_to, done, permanent) if mail_to else (0, None)
        delivered += mailed
        chart = await self._chart(item) if any((r.platform, str(r.chat_id)) not in done for r in recipients) else None
        for ident in recipients:
            chat_id = str(ident.chat_id)
            if (ident.platform, chat_id) in done:
                continue  # reached on an earlier pass
            if chart is not None:
                await self._send_chart(item, ident.platform, chat_id, *chart)
            message = Outgoing(chat_id=chat_id, card=card, text=text)
            send, adopted = await self._platform_send(item.id, ident.platform, message)
            try:
                ref = adopted or await self._with_retries(ident.platform, chat_id, send)
            except PermanentSendError as exc:
                metrics.NOTIFY_FAILED.labels(platform=ident.platform).inc()
                permanent.append(f"{ident.platform}:{chat_id}: {exc}")
                name = next((u.name for u in users if u.id == ident.user_id), chat_id)
                await self._tell_admin(item, f"{ident.platform}:{chat_id}", str(exc),
                                       t("admin.recipient", self.language, name=name,
                                         platform=platform_name(ident.platform, self.language)))
                continue
            assert ref is not None
            await self.repo.record_sent(item.id, approval_id, ref, self.clock.now())
            metrics.NOTIFY_SENT.labels(platform=ident.platform).inc()
            delivered += 1
        if mail_retry is not None:  # chats reached are recorded; the row comes back for the e-mail alone
            raise _StillRetryable(RetryableSendError(f"e-mail: {mail_retry}"))
        if delivered == 0 and permanent:
            await self.repo.mark_failed(item.id, shorten("; ".join(permanent), 500), self.clock.now())
            return
        if quiet_until_at is not None:  # the others are reached (recorded); the row comes back for the quiet ones
            await self.repo.defer_outbox(item.id, quiet_until_at, "quiet hours")
            return
        await self.repo.mark_sent(item.id, self.clock.now(), error=shorten("; ".join(permanent), 500) or None)

    async def _platform_send(self, outbox_id: int, platform: str, message: Outgoing
                             ) -> tuple[Callable[[], Awaitable[ChatRef]], ChatRef | None]:
        """The one platform call, bracketed by a send-attempt record when a store is given (handlers/send_attempts):
        the call to make, or the message an earlier, unrecorded send already delivered."""
        channel = self.channels[platform]
        if self.attempts is None:
            return (lambda: channel.send(message)), None
        hook = self.attempts
        prepared = await hook.prepare(outbox_id, channel, message)
        return (lambda: hook.send(outbox_id, channel, prepared)), prepared.adopt

    # --- the digest chart ------------------------------------------------------------------------------------------

    async def _chart(self, item: OutboxItem) -> tuple[bytes, str] | None:
        """(PNG, its numbers as text) for a digest row that carries chart figures, or None (text only)."""
        raw = item.payload.get("chart") if item.kind == "digest" else None
        if self.chart_renderer is None or not isinstance(raw, Mapping):
            return None
        try:
            data = chart_from_payload(raw)
            png = await asyncio.to_thread(self.chart_renderer, data, self.language)  # CPU-bound: off the loop
        except Exception:
            log.exception("digest chart of outbox row %s could not be rendered; sending the text only", item.id)
            return None
        return png, chart_summary(data, self.language)

    async def _send_chart(self, item: OutboxItem, platform: str, chat_id: str, png: bytes, summary: str) -> None:
        """The chart before the digest text; a chart that cannot go out never holds the text back."""
        photo = OutgoingPhoto(chat_id, png, summary, file_name=f"digest-{item.payload.get('day', 'chart')}.png")
        try:
            await self._with_retries(platform, chat_id, lambda: send_photo_or_text(self.channels[platform], photo))
        except (PermanentSendError, _StillRetryable) as exc:
            log.warning("digest chart to %s:%s not sent (%s); the text follows", platform, chat_id, exc)

    # --- e-mail (escalated stall alerts) ----------------------------------------------------------------------------

    def _quiet(self, item: OutboxItem, users: Sequence[UserInfo]) -> tuple[datetime | None, list[UserInfo]]:
        """(when the earliest quiet window among `users` ends, the users to reach in chat now) for a stall alert or
        group card; other rows, and alerts severe enough to ring through, reach everyone now."""
        if item.kind not in (KIND, GROUP_KIND) or "chat_id" in item.payload:
            return None, list(users)
        level = int(item.payload.get("level", 0))
        if may_ring(level, self.quiet_bypass_level()):
            return None, list(users)
        now = self.clock.now()
        ends: list[datetime] = []
        awake: list[UserInfo] = []
        for u in users:
            try:
                end = quiet_until(u.quiet_hours, now, self.timezone)
            except ValueError:  # a malformed stored window never holds alerts back
                end = None
            if end is None:
                awake.append(u)
            else:
                ends.append(end)
        return (min(ends) if ends else None), awake

    def _mail_recipients(self, item: OutboxItem, users: Sequence[UserInfo]) -> list[UserInfo]:
        """Who gets this row by e-mail: the breach's copy (`stall_mail`), only people with an address."""
        if self.mailer is None or item.kind != MAIL_KIND:
            return []
        return [u for u in users if u.email]

    async def _send_mails(self, item: OutboxItem, card: Card | None, users: Sequence[UserInfo],
                          done: set[tuple[str, str]], permanent: list[str]) -> tuple[int, RetryableSendError | None]:
        """Mail each user not mailed on an earlier pass; return how many were mailed now and the last retryable
        error (then the row is retried with its backoff)."""
        assert self.mailer is not None and card is not None
        view = await self.repo.order(int(item.payload["order_id"]))
        if view is None:
            return 0, None
        overdue = timedelta(seconds=int(item.payload.get("overdue_s", 0)))
        owner = await self.repo.user(view.owner_user_id) if view.owner_user_id else None
        subject, body = breach_mail(view, card, overdue, owner.name if owner else None, self.language, self.timezone)
        retry: RetryableSendError | None = None
        mailed = 0
        for user in users:
            if (MAIL_PLATFORM, str(user.id)) in done:
                continue
            try:
                await self.mailer.send(str(user.email), subject, body)
            except RetryableSendError as exc:
                log.warning("e-mail for outbox row %s to user %s deferred: %s", item.id, user.id, exc)
                retry = exc
                continue
            except PermanentSendError as exc:
                permanent.append(f"{MAIL_PLATFORM}:{user.email}: {exc}")
                await self._tell_admin(item, f"{MAIL_PLATFORM}:{user.email}", str(exc))
                continue
            ref = ChatRef(MAIL_PLATFORM, str(user.id), str(item.id))
            await self.repo.record_sent(item.id, None, ref, self.clock.now())
            mailed += 1
        return mailed, retry

    async def _edit_group_card(self, item: OutboxItem) -> None:
        """A group's update: edit every copy of its card (a single alert's card becomes the group card)."""
        group = await self.repo.alert_group(int(item.payload["group_id"]))
        entries = await group_entries(self.repo, group, self.clock.now()) if group is not None else []
        if group is None or group.card_outbox_id is None or not entries:
            await self.repo.mark_sent(item.id, self.clock.now())
            return
        target = await self.repo.outbox_item(group.card_outbox_id)
        if target is not None and target.status == "pending":
            # the card has not gone out yet (quiet hours, a retry): it is rendered when sent, joiners included
            await self.repo.mark_sent(item.id, self.clock.now(), error="card not sent yet; it will show these")
            return
        card = render_group(group, entries, self.token_key, self.language)
        for ref in await self.repo.refs_of_outbox(group.card_outbox_id):
            channel = self.channels.get(ref.platform)
            if channel is None or ref.platform == MAIL_PLATFORM:
                continue
            try:
                await self._with_retries(ref.platform, ref.chat_id, lambda r=ref, c=channel: c.update(r, card))
            except PermanentSendError as exc:
                log.info("group card %s not editable: %s", ref, exc)
        await self.repo.mark_sent(item.id, self.clock.now())

    async def _edit_approval_cards(self, item: OutboxItem) -> None:
        approval = await self.repo.approval(int(item.payload["approval_id"]))
        view = await self.repo.order(approval.order_id) if approval else None
        if approval is None or view is None:
            await self.repo.mark_sent(item.id, self.clock.now())
            return
        card = approval_card(approval, view, self.token_key, self.language, self.timezone)
        for ref in await self.repo.refs_of_approval(approval.id):
            channel = self.channels.get(ref.platform)
            if channel is None or not channel.capabilities.card_edits:
                continue  # not configured in this process, or its cards cannot be edited: the copy stays as sent
            try:
                await self._with_retries(ref.platform, ref.chat_id, lambda r=ref, c=channel: c.update(r, card))
            except PermanentSendError as exc:  # message deleted, chat gone: nothing left to edit
                log.info("card %s not editable: %s", ref, exc)
        await self.repo.mark_sent(item.id, self.clock.now())

    async def _with_retries(self, platform: str, chat_id: str, call: Callable[[], Awaitable[ChatRef | None]]
                            ) -> ChatRef | None:
        """One message: rate-limited, 429 waited out exactly, 5xx/timeouts retried with backoff."""
        key = f"{platform}:{chat_id}"
        group = self.channels[platform].capabilities.is_group(chat_id)
        last: RetryableSendError | None = None
        for attempt in range(INLINE_TRIES):
            blocked = self.limiter.wait_needed(key, group)
            if blocked > INLINE_WAIT_MAX_S:  # this chat is under a long flood wait: defer, don't hold the sweep
                reason = str(last) if last is not None else "chat is rate limited"
                raise _StillRetryable(RetryableSendError(reason, retry_after=blocked))
            await self.limiter.acquire(key, group)
            try:
                return await call()
            except RetryableSendError as exc:
                metrics.NOTIFY_RETRIED.labels(platform=platform).inc()
                last = exc
                wait = exc.retry_after if exc.retry_after is not None else backoff(attempt)
                self.limiter.block(key, wait)
                if exc.retry_after is not None and exc.retry_after > INLINE_WAIT_MAX_S:
                    raise _StillRetryable(exc) from exc  # a long flood wait: the row comes back when it is over
        assert last is not None
        raise _StillRetryable(last)
