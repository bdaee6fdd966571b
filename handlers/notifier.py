"""The outbox notifier: rows first, messages second, so nothing is lost or doubled across restarts.

A row names its recipients (a user, or a role + region); each delivery to one chat is recorded as a message
reference before the row counts as sent, so a retried row skips chats it already reached and a later decision
can edit every copy. Platform errors are classified by the adapters: `RetryableSendError` (429 with its exact
`retry_after`, 5xx, timeouts) is retried with backoff, `PermanentSendError` (blocked, chat not found) is recorded
on the row and an admin is told.

One row goes through named stages (`Notifier._send_row`): render (the `RENDERERS` table, keyed by kind; rows are
built by their kind's constructor, `handlers/outbox_kinds.py` or the producing use case) → address (the users, their
chats, their e-mail addresses) → dedup (the references of earlier passes) → rate-limit and send (per chat, and the
e-mail integration) → record. Escalated stall alerts (level >= 1) also go by e-mail to the recipients that have an
address, when a `MailSender` is given: recorded as an ("email", user id) reference like a chat, so each goes once per
row and recipient.

A stall's breach also queues one `stall_mail` row: the copy to the owner's supervisor's mailbox (its renderer
writes only the e-mail; escalations are chat only). Grouped stall cards (`stall_group`) are sent like any card, or,
for a group's update, edit the card already sent. Quiet hours (engine/quiet.py) hold a person's chat alerts until the
window ends, unless the alert's ladder level rings through (`quiet_bypass_level`); the held row is deferred, never
dropped, and the e-mail copy ignores them.

A row is claimed in the database before anything is sent for it (`ChatRepo.claim_outbox`, one atomic UPDATE): the
leader's sweep and a decision's immediate delivery in another process (`deliver_ids`) may reach for the same row at
once, and only one of them gets it. The claim runs for `claim_s` and is renewed before every platform call, so a
pass that holds a row keeps it; a claim whose process died runs out and the next pass takes the row (then
handlers/send_attempts.py decides whether a send of the dead process may have landed). Marking the row clears it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
from handlers.carrier_switch import NOTICE as SWITCH_NOTICE
from handlers.carrier_trends import KIND as DEGRADED
from handlers.cards import approval_card, stall_card, trend_card
from handlers.digest import KIND as DIGEST
from handlers.note_cards import note_review_card
from handlers.notes import KIND as TREND
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
from handlers.alert_groups import GROUP_KIND, group_entries, render_group
from handlers.chat_ports import ChatRepo, Identity, OutboxItem, UserInfo
from handlers.mail import MAIL_PLATFORM, BreachCopy, MailSender, breach_mail, breach_mail_batch
from handlers.outbox_kinds import (
    ADMIN_NOTICE,
    APPROVAL_OUTCOME,
    APPROVAL_REQUEST,
    DEAD_LETTER,
    RULES_INVALID,
    admin_notice,
)
from handlers.ports import Clock
from handlers.rate_limit import ChatRateLimiter
from handlers.refunds import UPDATE_KIND as REFUND_UPDATE
from handlers.send_attempts import AttemptedSends, SendAttempts
from handlers.stalls import KIND as STALL
from handlers.stalls import MAIL_KIND
from handlers.tracking import STALL_KIND as TRACKING_STALL
from handlers.tracking import UPDATE_KIND as TRACKING_UPDATE

log = logging.getLogger(__name__)

INLINE_TRIES = 6  # tries per message within one pass; then the row waits for a later pass
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0
MAX_ROW_ATTEMPTS = 20  # passes before a row is given up as failed (and an admin told)
INLINE_WAIT_MAX_S = 10.0  # a longer flood wait defers the row (due_at = now + retry_after) instead of blocking others
# How long a claim on a row lasts without renewal (renewed before each platform call): longer than one call with its
# inline wait, and about two scheduler leases, so a killed leader's rows are free soon after its lease is
CLAIM_S = 30.0


def backoff(attempt: int) -> float:
    return min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S)


class _ClaimLost(Exception):
    """Another process took the row while this pass was waiting (its claim ran out): this pass sends no more."""


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


@dataclass(frozen=True, slots=True)
class Rendered:
    """What a row says: a card or a text; the approval whose copies these are (edited on its decision); an e-mail
    (subject, body) for the addressees with an address; digest chart figures, drawn only if a chat still needs them."""

    card: Card | None = None
    text: str = ""
    approval_id: int | None = None
    mail: tuple[str, str] | None = None
    chart: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What a renderer may read: the repository, the token key of its buttons, the language and time zone, the
    time of this pass, and whether an e-mail integration is configured."""

    repo: ChatRepo
    token_key: bytes
    language: str
    timezone: str
    now: datetime
    mails: bool = False


# A renderer: the row's content, or None when the row no longer needs sending (decided, moved on); an exception
# retries the row and finally tells an admin.
Renderer = Callable[[OutboxItem, RenderContext], Awaitable[Rendered | None]]


async def _render_approval(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
    approval = await ctx.repo.approval(int(item.payload["approval_id"]))
    if approval is None or approval.status != Status.PENDING:
        return None  # decided before it went out: nothing to ask any more
    view = await ctx.repo.order(approval.order_id)
    if view is None:
        return None
    extra = item.payload.get("fields") or ()  # what a refund request brings to its card
    return Rendered(approval_card(approval, view, ctx.token_key, ctx.language, ctx.timezone, extra),
                    approval_id=approval.id)


async def _render_stall(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
    view = await ctx.repo.order(int(item.payload["order_id"]))
    if view is None or view.order.stage.value != item.payload.get("stage"):
        return None  # the order moved on before the alert went out
    overdue = timedelta(seconds=int(item.payload.get("overdue_s", 0)))
    level = int(item.payload.get("level", 0))
    card = stall_card(view, item.id, level, overdue, ctx.token_key, ctx.language, ctx.timezone,
                      levels=item.payload.get("levels"), role=item.payload.get("role"),
                      roles=item.payload.get("roles"))
    return Rendered(card)  # escalations are chat only: the breach's e-mail copy is its own row (`stall_mail`)


async def _breach_copy(item: OutboxItem, ctx: RenderContext) -> BreachCopy | None:
    """What the breach's copy (`stall_mail`) says, or None when the order moved on before it went out."""
    view = await ctx.repo.order(int(item.payload["order_id"]))
    if view is None or view.order.stage.value != item.payload.get("stage"):
        return None
    overdue = timedelta(seconds=int(item.payload.get("overdue_s", 0)))
    card = stall_card(view, item.id, 0, overdue, ctx.token_key, ctx.language, ctx.timezone, role="owner")
    owner = view.owner_name
    if owner is None and view.owner_user_id:
        user = await ctx.repo.user(view.owner_user_id)
        owner = user.name if user else None
    return BreachCopy(view, card, overdue, owner)


async def _render_breach_mail(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
    """The breach's copy to the supervisor's mailbox: an e-mail only (no chat), the order's facts, the phone masked."""
    copy = await _breach_copy(item, ctx)
    if copy is None:
        return None
    return Rendered(mail=breach_mail(copy.view, copy.card, copy.overdue, copy.owner, ctx.language, ctx.timezone))


async def _render_group(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
    group = await ctx.repo.alert_group(int(item.payload["group_id"]))
    entries = await group_entries(ctx.repo, group, ctx.now) if group is not None else []
    if group is None or not entries:
        return None  # everything on it was handled before it went out
    return Rendered(render_group(group, entries, ctx.token_key, ctx.language))


def _card(build: Callable[[OutboxItem, RenderContext], Card]) -> Renderer:
    """A renderer for a row whose card is built from its payload alone."""
    async def render(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
        return Rendered(build(item, ctx))
    return render


def _facts(word: Callable[[Mapping[str, Any], str], str]) -> Renderer:
    """Alerts of storage's making (dead letters, rejected rules files) carry facts, not text: worded here."""
    async def render(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
        return Rendered(text=shorten(word(item.payload, ctx.language), TEXT_BUDGET))
    return render


async def render_text(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
    """Plain-text rows (admin notices, updates to one chat), composed within TEXT_BUDGET when queued; also the
    renderer of a kind missing from the table: a row with nothing to say is retried, then an admin is told."""
    text = str(item.payload.get("text", ""))
    if not text:
        raise ValueError(f"outbox row of kind {item.kind!r} has nothing to say")
    return Rendered(text=shorten(text, TEXT_BUDGET))


async def _render_digest(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
    """The digest text, and the chart figures when it carries them (drawn at send time, see `_chart`)."""
    text = await render_text(item, ctx)
    raw = item.payload.get("chart")
    return Rendered(text=text.text, chart=raw) if text is not None and isinstance(raw, Mapping) else text


RENDERERS: dict[str, Renderer] = {
    APPROVAL_REQUEST: _render_approval,
    STALL: _render_stall,
    MAIL_KIND: _render_breach_mail,
    GROUP_KIND: _render_group,
    TREND: _card(lambda item, ctx: trend_card(item.payload, ctx.language)),
    REVIEW_KIND: _card(lambda item, ctx: note_review_card(item.payload, ctx.token_key, ctx.language)),  # to classify
    DEGRADED: _card(lambda item, ctx: degraded_card(item.id, item.payload, ctx.token_key, ctx.language)),
    SWITCHED: _card(lambda item, ctx: switched_card(item.id, item.payload, ctx.token_key, ctx.language)),
    RULES_INVALID: _facts(_rules_invalid),
    DEAD_LETTER: _facts(_dead_letter),
    DIGEST: _render_digest,
    ADMIN_NOTICE: render_text,
    SWITCH_NOTICE: render_text,
    REFUND_UPDATE: render_text,
    TRACKING_UPDATE: render_text,
    TRACKING_STALL: render_text,
}


@dataclass(slots=True)
class _Addressed:
    """Where a row goes: chats of linked users (or the one chat the row names) and users to e-mail; the people it is
    for; and, when some of them are in their quiet hours, when the earliest window ends (the row comes back then)."""

    chats: list[Identity]
    mail_to: list[UserInfo]
    users: list[UserInfo]
    quiet_until: datetime | None = None


@dataclass(slots=True)
class _Progress:
    """One pass over a row: what earlier passes reached (dedup), what this pass delivered, what failed for good, and a
    deferred e-mail (then the row comes back for it)."""

    done: set[tuple[str, str]]
    delivered: int = 0
    permanent: list[str] = field(default_factory=list)
    mail_retry: RetryableSendError | None = None


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
        renderers: Mapping[str, Renderer] | None = None,
        claim_s: float = CLAIM_S,
    ) -> None:
        self.repo = repo
        self.owner = uuid.uuid4().hex  # who holds a claimed row: this notifier, unique across processes
        self.claim_s = claim_s
        self.quiet_bypass_level = quiet_bypass_level  # read per row: the rules may have been reloaded
        self.renderers = {**RENDERERS, **(renderers or {})}  # by kind; a kind missing here is sent as plain text
        self.chart_renderer = chart_renderer  # ChartData -> PNG (bot/adapters/digest_chart.py); None: digests stay text
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
        """Deliver the rows due now; return how many rows were handled (a row another process holds is not).

        With no chat platform configured in this process nothing is touched: the rows wait for one that has.
        """
        if not self.channels:
            return 0
        items = await self.repo.due_outbox(self.clock.now(), limit)
        copies: dict[tuple[int | None, str | None, str | None], list[OutboxItem]] = {}
        handled = 0
        for item in items:
            if item.kind == MAIL_KIND and self.mailer is not None:  # breach copies: one e-mail per supervisor
                copies.setdefault((item.recipient_user_id, item.recipient_role, item.recipient_region), []).append(item)
            else:
                handled += await self._handle(item.id)
        for rows in copies.values():
            if len(rows) == 1:
                handled += await self._handle(rows[0].id)
            else:
                handled += await self._send_breach_copies(rows)
        return handled

    async def deliver_ids(self, outbox_ids: Sequence[int]) -> None:
        """Deliver these rows now (a decision's card edits), if still pending and no other process (the leader's
        sweep) holds them: the claim in `_handle` decides."""
        for outbox_id in outbox_ids:
            await self._handle(outbox_id)

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

    async def _handle(self, outbox_id: int) -> bool:
        """One row, claimed first (False: not pending, or another process holds it); the lock keeps this process's
        sweep and immediate deliveries one at a time."""
        async with self._lock:
            fresh = await self._claim(outbox_id)
            if fresh is None:
                return False
            try:
                if fresh.kind == APPROVAL_OUTCOME:  # edits the copies sent, sends nothing new
                    await self._edit_approval_cards(fresh)
                elif fresh.kind == GROUP_KIND and fresh.payload.get("mode") == "edit":
                    await self._edit_group_card(fresh)
                else:
                    await self._send_row(fresh)
            except _StillRetryable as exc:
                await self._retry_later(fresh, str(exc.error), exc.error.retry_after)
            except _ClaimLost:  # the process that took it over finishes it: nothing to record here
                log.warning("outbox row %s: claim lost to another process mid-pass; left to it", fresh.id)
            except Exception as exc:  # a broken row must not block the rows behind it: back off, then give up
                log.exception("outbox row %s (%s) failed", fresh.id, fresh.kind)
                await self._retry_later(fresh, f"{type(exc).__name__}: {exc}", None)
            return True

    async def _claim(self, outbox_id: int) -> OutboxItem | None:
        """Take (or renew) this notifier's claim on a pending row: the row, or None when another holds it."""
        now = self.clock.now()
        return await self.repo.claim_outbox(outbox_id, self.owner, now, now + timedelta(seconds=self.claim_s))

    async def _hold(self, outbox_id: int) -> None:
        """Right before a platform call: renew the claim, or stop if another process has taken the row."""
        if await self._claim(outbox_id) is None:
            raise _ClaimLost(outbox_id)

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
        if item.kind == ADMIN_NOTICE:  # never loop: a notice that cannot reach an admin is only logged
            log.error("admin notice %s undeliverable: %s", item.id, error)
            return
        who = who or (t("admin.every_recipient", self.language) if chat == "-" else chat)  # "-": the row as a whole
        text = t("admin.send_failed", self.language, chat=who, kind=message_kind(item.kind, self.language),
                 error=shorten(error, 300))
        notice = admin_notice(f"notice:sendfail:{item.id}:{chat}", text, self.clock.now())
        await self.repo.enqueue([notice], self.clock.now())

    # --- the stages of one row: render → address → dedup → rate-limit and send → record ----------------------------

    async def _send_row(self, item: OutboxItem) -> None:
        rendered = await self._render(item)
        if rendered is None:
            await self.repo.mark_sent(item.id, self.clock.now())
            return
        to = await self._address(item, rendered)
        if not to.chats and not to.mail_to:
            if to.quiet_until is not None:
                await self.repo.defer_outbox(item.id, to.quiet_until, "quiet hours")  # delivered when they end
            elif rendered.mail is not None and rendered.card is None and not rendered.text:  # an e-mail copy only
                why = "no SMTP configured" if self.mailer is None else "no e-mail address for the supervisor"
                await self.repo.mark_sent(item.id, self.clock.now(), error=f"{why}: e-mail copy not sent")
            else:
                await self._unaddressed(item)
            return
        progress = await self._dedup(item)
        if to.mail_to:
            await self._send_mails(item, rendered, to.mail_to, progress)
        await self._send_chats(item, rendered, to.chats, progress, to.users)
        await self._record(item, progress, to.quiet_until)

    async def _render(self, item: OutboxItem) -> Rendered | None:
        """The row's content by its kind's renderer, or None when the row no longer needs sending."""
        ctx = RenderContext(self.repo, self.token_key, self.language, self.timezone, self.clock.now(),
                            mails=self.mailer is not None)
        return await self.renderers.get(item.kind, render_text)(item, ctx)

    async def _address(self, item: OutboxItem, rendered: Rendered) -> _Addressed:
        users = await self._addressees(item)
        quiet_until_at, awake = self._quiet(item, users)
        says = rendered.card is not None or bool(rendered.text)  # an e-mail-only row goes to no chat
        chats = await self._recipients(item, awake) if says else []
        return _Addressed(chats, self._mail_recipients(rendered, users), list(users), quiet_until_at)

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

    async def _unaddressed(self, item: OutboxItem) -> None:
        """Someone may link their chat soon (/link): tell an admin now, keep trying for a while, then give up."""
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
            await self.repo.mark_retry(item.id, self.clock.now() + timedelta(seconds=backoff(item.attempts)), error)

    async def _dedup(self, item: OutboxItem) -> _Progress:
        """The chats (and e-mail recipients) reached on earlier passes: skipped on this one."""
        done = {(r.platform, r.chat_id) for r in await self.repo.refs_of_outbox(item.id)}
        return _Progress(done, delivered=len(done))

    async def _send_chats(self, item: OutboxItem, rendered: Rendered, chats: Sequence[Identity],
                          progress: _Progress, users: Sequence[UserInfo] = ()) -> None:
        """Each chat not reached yet: rate-limited and retried (`_with_retries`), each delivery recorded at once."""
        pending = [ident for ident in chats if (ident.platform, str(ident.chat_id)) not in progress.done]
        chart = await self._chart(item, rendered.chart) if pending and rendered.chart is not None else None
        for ident in pending:
            chat_id = str(ident.chat_id)
            if chart is not None:
                await self._send_chart(item, ident.platform, chat_id, *chart)
            message = Outgoing(chat_id=chat_id, card=rendered.card, text=rendered.text)
            send, adopted = await self._platform_send(item.id, ident.platform, message)
            try:
                ref = adopted or await self._with_retries(ident.platform, chat_id, send)
            except PermanentSendError as exc:
                metrics.NOTIFY_FAILED.labels(platform=ident.platform).inc()
                progress.permanent.append(f"{ident.platform}:{chat_id}: {exc}")
                name = next((u.name for u in users if u.id == ident.user_id), chat_id)
                await self._tell_admin(item, f"{ident.platform}:{chat_id}", str(exc),
                                       t("admin.recipient", self.language, name=name,
                                         platform=platform_name(ident.platform, self.language)))
                continue
            assert ref is not None
            await self.repo.record_sent(item.id, rendered.approval_id, ref, self.clock.now())
            metrics.NOTIFY_SENT.labels(platform=ident.platform).inc()
            progress.delivered += 1

    async def _record(self, item: OutboxItem, progress: _Progress, quiet_until_at: datetime | None = None) -> None:
        """The row's outcome: sent (with the chats that failed for good), failed, or back later for an e-mail or for
        the people in their quiet hours."""
        if progress.mail_retry is not None:  # chats reached are recorded; the row comes back for the e-mail alone
            raise _StillRetryable(RetryableSendError(f"e-mail: {progress.mail_retry}"))
        error = shorten("; ".join(progress.permanent), 500)
        if progress.delivered == 0 and progress.permanent:
            await self.repo.mark_failed(item.id, error, self.clock.now())
            return
        if quiet_until_at is not None:  # the others are reached (recorded); the row comes back for the quiet ones
            await self.repo.defer_outbox(item.id, quiet_until_at, "quiet hours")
            return
        await self.repo.mark_sent(item.id, self.clock.now(), error=error or None)

    async def _platform_send(self, outbox_id: int, platform: str, message: Outgoing
                             ) -> tuple[Callable[[], Awaitable[ChatRef]], ChatRef | None]:
        """The one platform call, bracketed by a send-attempt record when a store is given (handlers/send_attempts):
        the call to make, or the message an earlier, unrecorded send already delivered."""
        channel = self.channels[platform]
        hook = self.attempts
        prepared = await hook.prepare(outbox_id, channel, message) if hook is not None else None

        async def send() -> ChatRef:
            await self._hold(outbox_id)  # every try: a row another process took over is not sent from here
            if hook is None or prepared is None:
                return await channel.send(message)
            return await hook.send(outbox_id, channel, prepared)
        return send, prepared.adopt if prepared is not None else None

    # --- the digest chart ------------------------------------------------------------------------------------------

    async def _chart(self, item: OutboxItem, raw: Mapping[str, Any]) -> tuple[bytes, str] | None:
        """(PNG, its numbers as text) for a digest row that carries chart figures, or None (text only)."""
        if self.chart_renderer is None:
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

        async def send() -> ChatRef:
            await self._hold(item.id)
            return await send_photo_or_text(self.channels[platform], photo)
        try:
            await self._with_retries(platform, chat_id, send)
        except (PermanentSendError, _StillRetryable) as exc:
            log.warning("digest chart to %s:%s not sent (%s); the text follows", platform, chat_id, exc)

    # --- quiet hours -----------------------------------------------------------------------------------------------

    def _quiet(self, item: OutboxItem, users: Sequence[UserInfo]) -> tuple[datetime | None, list[UserInfo]]:
        """(when the earliest quiet window among `users` ends, the users to reach in chat now) for a stall alert or
        group card; other rows, and alerts severe enough to ring through, reach everyone now."""
        if item.kind not in (STALL, GROUP_KIND) or "chat_id" in item.payload:
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

    # --- the e-mail integration (the breach's copy to the supervisor) -----------------------------------------------

    def _mail_recipients(self, rendered: Rendered, users: Sequence[UserInfo]) -> list[UserInfo]:
        """Who gets this row by e-mail: rows whose renderer wrote an e-mail, people with an address."""
        if self.mailer is None or rendered.mail is None:
            return []
        return [u for u in users if u.email]

    async def _send_mails(self, item: OutboxItem, rendered: Rendered, users: Sequence[UserInfo],
                          progress: _Progress) -> None:
        """Mail each user not mailed on an earlier pass; a retryable error defers the row (with its backoff) once the
        chats are done."""
        assert self.mailer is not None and rendered.mail is not None
        subject, body = rendered.mail
        for user in users:
            if (MAIL_PLATFORM, str(user.id)) in progress.done:
                continue
            await self._hold(item.id)
            try:
                await self.mailer.send(str(user.email), subject, body)
            except RetryableSendError as exc:
                log.warning("e-mail for outbox row %s to user %s deferred: %s", item.id, user.id, exc)
                progress.mail_retry = exc
                continue
            except PermanentSendError as exc:
                progress.permanent.append(f"{MAIL_PLATFORM}:{user.email}: {exc}")
                await self._tell_admin(item, f"{MAIL_PLATFORM}:{user.email}", str(exc))
                continue
            ref = ChatRef(MAIL_PLATFORM, str(user.id), str(item.id))
            await self.repo.record_sent(item.id, None, ref, self.clock.now())
            progress.delivered += 1

    async def _send_breach_copies(self, rows: Sequence[OutboxItem]) -> int:
        """Breach copies due together for one recipient (a burst of stalls): one e-mail listing them all, recorded on
        every row it covers, so each order's copy still goes once per row and recipient across restarts. Returns how
        many of the rows this process claimed."""
        assert self.mailer is not None
        async with self._lock:
            now = self.clock.now()
            ctx = RenderContext(self.repo, self.token_key, self.language, self.timezone, now, mails=True)
            todo: list[tuple[OutboxItem, BreachCopy]] = []
            claimed = 0
            for row in rows:
                fresh = await self._claim(row.id)
                if fresh is None:  # no longer pending, or another process is on it
                    continue
                claimed += 1
                copy = await _breach_copy(fresh, ctx)
                if copy is None:
                    await self.repo.mark_sent(fresh.id, now)
                else:
                    todo.append((fresh, copy))
            if todo:
                await self._mail_breach_copies(todo, now)
            return claimed

    async def _mail_breach_copies(self, todo: Sequence[tuple[OutboxItem, BreachCopy]], now: datetime) -> None:
        """The batched e-mail of `_send_breach_copies`, per supervisor, and the rows' outcome."""
        assert self.mailer is not None
        mail_to = [u for u in await self._addressees(todo[0][0]) if u.email]
        errors: list[str] = []
        for user in mail_to:
            ref_user = (MAIL_PLATFORM, str(user.id))
            pending = [(row, c) for row, c in todo
                       if ref_user not in {(r.platform, r.chat_id) for r in await self.repo.refs_of_outbox(row.id)}]
            if not pending:
                continue
            subject, body = breach_mail_batch([c for _, c in pending], self.language)
            try:
                for row, _ in pending:
                    await self._hold(row.id)
            except _ClaimLost:
                log.warning("breach copies %s: claim lost to another process; left to it",
                            [r.id for r, _ in pending])
                return
            try:
                await self.mailer.send(str(user.email), subject, body)
            except RetryableSendError as exc:
                log.warning("breach copies %s to user %s deferred: %s", [r.id for r, _ in pending], user.id, exc)
                for row, _ in todo:
                    await self._retry_later(row, f"e-mail: {exc}", None)
                return
            except PermanentSendError as exc:
                errors.append(f"{MAIL_PLATFORM}:{user.email}: {exc}")
                await self._tell_admin(pending[0][0], f"{MAIL_PLATFORM}:{user.email}", str(exc))
                continue
            for row, _ in pending:
                await self.repo.record_sent(row.id, None, ChatRef(MAIL_PLATFORM, str(user.id), str(row.id)), now)
        why = None if mail_to else "no e-mail address for the supervisor: e-mail copy not sent"
        for row, _ in todo:
            await self.repo.mark_sent(row.id, now, error=why or shorten("; ".join(errors), 500) or None)

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
