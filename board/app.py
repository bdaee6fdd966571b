"""`create_board(services)`: the board as an ASGI app, mounted at `/board` by the app factory.

Every route authenticates (signed session cookie), scopes (a manager sees only their regions; a customer never gets
in) and parses; moves go through `handlers.orders.transition`, decisions through the chat's decide, notes through
the API's note use case. Every POST carries the page's CSRF token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlparse

import orjson
from fastapi import Depends, FastAPI, Path as PathParam, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import AfterValidator, BaseModel, Field
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from engine.access import Viewer as Actor
from engine.approvals import Status, may_decide
from engine.order import check_text
from engine.stages import Stage, TransitionError, label
from engine.text import fmt_money, fmt_time, mask_phone, role_name
from handlers.board import COLUMNS
from handlers.chat_ports import UserInfo
from handlers.note_learning import RelabelRefused, relabel
from handlers.notes import category_names
from handlers.orders import MoveRefused, OrderNotFound, transition

from board.auth import COOKIE, LINK_TTL, SESSION_TTL, Session
from board.services import BoardServices
from board.text import bt, words
from board.views import card_view, parse_filter, why_lines

log = logging.getLogger("orderhub.board")
MAX_FORM = 4096
_env = Environment(loader=PackageLoader("board", "templates"), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


class BoardError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True, slots=True)
class Viewer:
    user: UserInfo
    session: Session
    csrf: str

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The regions this person sees: a manager their own, everyone else on staff all."""
        return tuple(self.user.regions) if self.user.role == "manager" else None

    def sees(self, region: str | None) -> bool:
        scope = self.scope
        return scope is None or (region is not None and region in scope)


def _svc(request: Request) -> BoardServices:
    return request.app.state.board


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _render(template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**ctx), status_code=status)


async def viewer(request: Request) -> Viewer:
    svc = _svc(request)
    session = svc.auth.session(request.cookies.get(COOKIE), svc.clock.now())
    if session is None:
        raise BoardError(401, "login_needed", bt("login.needed", svc.language))
    user = await svc.directory.user(session.user_id)
    if user is None:
        raise BoardError(401, "login_needed", bt("login.needed", svc.language))
    if not user.is_staff:
        raise BoardError(403, "forbidden", bt("forbidden", svc.language))
    return Viewer(user, session, svc.auth.csrf_token(session))


async def changer(request: Request, who: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """A signed-in person whose POST carries the page's CSRF token."""
    svc = _svc(request)
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        token = (await _form(request)).get("csrf")
    if not svc.auth.csrf_ok(who.session, token):
        raise BoardError(403, "csrf_failed", bt("csrf", svc.language))
    return who


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise BoardError(413, "payload_too_large", "form too large")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


Text = AfterValidator(check_text)  # NUL and lone surrogates: a 422 here, not a database error later


class MoveBody(BaseModel):
    to: str = Field(max_length=32)
    reason: Annotated[str, Field(default="", max_length=500), Text]


class NoteBody(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=2000), Text]


class CategoryBody(BaseModel):
    category: Annotated[str, Field(min_length=1, max_length=64), Text]


class DecisionBody(BaseModel):
    decision: str = Field(pattern="^(approve|reject)$")
    reason: Annotated[str, Field(default="", max_length=500), Text]


Who = Annotated[Viewer, Depends(viewer)]
DbId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]  # a row id: out of range is a 422, never a database overflow
Changer = Annotated[Viewer, Depends(changer)]


def create_board(services: BoardServices) -> FastAPI:
    app = FastAPI(title="OrderHub board", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.board = services
    lang = services.language
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.exception_handler(BoardError)
    async def _board_error(request: Request, exc: BoardError) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return _render("message.html", exc.status, w=words(lang), lang=lang, base=_base(request),
                           message=exc.detail)
        return Response(orjson.dumps({"error": exc.code, "detail": exc.detail}), status_code=exc.status,
                        media_type="application/json")

    async def _unavailable(request: Request, exc: Exception) -> Response:
        """A database or Redis outage is a clear 503 (the browser retries), never a stack trace."""
        log.warning("board request failed: %s %s: %s", request.method, request.url.path, exc)
        return await _board_error(request, BoardError(503, "unavailable", bt("unavailable", lang)))

    for outage in (OSError, SQLAlchemyError, RedisError):
        app.add_exception_handler(outage, _unavailable)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        errors = [{"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return Response(orjson.dumps({"error": "invalid_request", "detail": f"{len(errors)} invalid field(s)",
                                      "errors": errors}), status_code=422, media_type="application/json")

    def columns_ctx(request: Request, who: Viewer) -> tuple[Any, dict[str, str]]:
        return parse_filter(request.query_params, who.scope)

    async def columns(request: Request, who: Viewer) -> dict[str, Any]:
        f, kept = columns_ctx(request, who)
        now = services.clock.now()
        counts = await services.source.counts(f, now)
        cards = await services.source.cards(f, now, COLUMNS, 0, services.page_size)
        cols = [{"stage": s.value, "label": label(s, lang), "count": counts[s],
                 "cards": [card_view(c, now, lang, services.badge_hooks) for c in cards[s]],
                 "more": max(counts[s] - len(cards[s]), 0), "offset": len(cards[s])} for s in COLUMNS]
        return {"columns": cols, "query": urlencode(kept), "kept": kept}

    def page_ctx(request: Request, who: Viewer, **more: Any) -> dict[str, Any]:
        return {"w": words(lang), "lang": lang, "base": _base(request), "csrf": who.csrf,
                "user": who.user, "role": role_name(who.user.role, lang), **more}

    @app.get("/", response_class=HTMLResponse)
    async def board_page(request: Request, who: Who) -> HTMLResponse:
        rules = services.rules()
        scope = who.scope
        city_region = {c: r for c, r in rules.city_region.items() if scope is None or r in scope}
        data = await columns(request, who)
        return _render("board.html", **page_ctx(request, who, **data),
                       cities=sorted(city_region), regions=sorted(set(city_region.values())),
                       owners=await services.source.owners(scope), client_words=orjson.dumps(words(lang)).decode())

    @app.get("/columns", response_class=HTMLResponse)
    async def columns_fragment(request: Request, who: Who) -> HTMLResponse:
        return _render("columns.html", **page_ctx(request, who, **(await columns(request, who))))

    @app.get("/column/{stage}", response_class=HTMLResponse)
    async def column_page(request: Request, stage: Stage, who: Who, offset: int = 0) -> HTMLResponse:
        if stage not in COLUMNS:
            raise BoardError(404, "not_found", "not a board column")
        offset = max(0, min(offset, 1_000_000))
        f, kept = columns_ctx(request, who)
        now = services.clock.now()
        counts = await services.source.counts(f, now)
        cards = (await services.source.cards(f, now, [stage], offset, services.page_size))[stage]
        col = {"stage": stage.value, "cards": [card_view(c, now, lang, services.badge_hooks) for c in cards],
               "more": max(counts[stage] - offset - len(cards), 0), "offset": offset + len(cards)}
        return _render("cards.html", **page_ctx(request, who, col=col, query=urlencode(kept)))

    # --- signing in ---------------------------------------------------------------------------------------------

    async def _link_user(request: Request, token: str, now: datetime, *, consume: bool
                         ) -> tuple[UserInfo, dict[str, Any]] | HTMLResponse:
        """The staff member a sign-in link names with the page context, or the 403 page saying why not."""
        check = await services.auth.check_link(token, now, consume=consume)
        user = await services.directory.user(check.user_id) if check.user_id is not None else None
        ctx = {"w": words(lang), "lang": lang, "base": _base(request)}
        if check.problem is not None or user is None:
            return _render("message.html", 403, **ctx, message=bt(f"login.{check.problem or 'invalid'}", lang))
        if not user.is_staff:
            return _render("message.html", 403, **ctx, message=bt("forbidden", lang))
        return user, ctx

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, t: str = "") -> HTMLResponse:
        """Shows who the link signs in; only the POST uses it up (chat link previews must not spend it)."""
        signed = await _link_user(request, t, services.clock.now(), consume=False)
        if isinstance(signed, HTMLResponse):
            return signed
        user, ctx = signed
        return _render("login.html", **ctx, token=t, name=user.name)

    @app.post("/login")
    async def login(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlparse(origin).netloc != request.headers.get("host"):
            raise BoardError(403, "forbidden", bt("csrf", lang))  # another site posting someone's link for us
        token = (await _form(request)).get("t", "")
        now = services.clock.now()
        signed = await _link_user(request, token, now, consume=True)
        if isinstance(signed, HTMLResponse):
            return signed
        user = signed[0]
        response = RedirectResponse(f"{_base(request)}/", status_code=303)
        response.set_cookie(COOKIE, services.auth.session_cookie(user.id, now), max_age=int(SESSION_TTL.total_seconds()),
                            path=_base(request) or "/", httponly=True, samesite="lax", secure=services.secure_cookies)
        log.info("board sign-in: %s", user.name)
        return response

    @app.post("/logout")
    async def logout(request: Request, who: Changer) -> Response:
        response = RedirectResponse(f"{_base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE, path=_base(request) or "/")
        return response

    # --- the drawer ---------------------------------------------------------------------------------------------

    async def visible_detail(order_id: int, who: Viewer) -> Any:
        detail = await services.orders.get(str(order_id))
        if detail is None or not who.sees(detail.order.region):
            raise BoardError(404, "order_not_found", bt("not_found", lang))
        return detail

    @app.get("/orders/{order_id}", response_class=HTMLResponse)
    async def drawer(request: Request, order_id: DbId, who: Who) -> HTMLResponse:
        detail = await visible_detail(order_id, who)
        tz = services.timezone
        actor = who.user.as_actor()
        approvals = [{"id": a.id, "level": a.level, "role": role_name(a.required_role, lang),
                      "region": a.region or "—", "status": bt(f"status.{a.status.value}", lang),
                      "pending": a.status == Status.PENDING, "decided_by": a.decided_by or "", "reason": a.reason,
                      "may": a.status == Status.PENDING and may_decide(a, actor)}
                     for a in await services.directory.approvals_of_order(order_id)]
        o = detail.order
        history = [{"at": fmt_time(h.at, tz), "from": label(h.from_stage, lang) if h.from_stage else "—",
                    "to": label(h.to_stage, lang), "by": h.actor, "reason": h.reason} for h in o.history]
        may_relabel = services.notes is not None
        notes = [{"id": n.get("id"), "at": fmt_time(n["at"], tz), "author": n["author"], "text": n["text"],
                  "category": n.get("category") or "",
                  "relabel": may_relabel and n.get("kind", "exception") == "exception" and n.get("id") is not None}
                 for n in detail.notes]
        names = category_names(services.rules()) if may_relabel else {}
        categories = [(cid, zh if lang == "zh" else en) for cid, (zh, en) in names.items()]
        tracking = detail.tracking if isinstance(detail.tracking, dict) else None
        refunds = [{"id": r.id, "amount": fmt_money(r.amount, o.data.currency), "reason": r.reason,
                    "state": bt(f"refund.{r.state.value}", lang), "by": r.requested_by,
                    "at": fmt_time(r.requested_at, tz)}
                   for r in (await services.refunds(order_id) if services.refunds is not None else [])]
        return _render("drawer.html", **page_ctx(
            request, who, o=o, detail=detail, stage_label=label(o.stage, lang), phone=mask_phone(o.data.customer.phone),
            amount=fmt_money(o.data.amount, o.data.currency), deadline=fmt_time(o.stage_deadline, tz), created=fmt_time(o.data.created_at, tz), history=history,
            notes=notes, categories=categories, approvals=approvals, refunds=refunds, tracking=tracking, why=why_lines(detail, services.rules(), lang, tz)))

    # --- acting -------------------------------------------------------------------------------------------------

    @app.post("/orders/{order_id}/move")
    async def move(order_id: DbId, body: MoveBody, who: Changer) -> Response:
        await visible_detail(order_id, who)
        try:
            moved = await transition(services.orders, services.rules(), str(order_id), body.to, body.reason,
                                     who.user.name, services.clock.now())
        except OrderNotFound:
            raise BoardError(404, "order_not_found", bt("not_found", lang)) from None
        except TransitionError as exc:
            allowed = "、".join(label(s, lang) for s in exc.allowed) or bt("drawer.none", lang)
            raise BoardError(409, "invalid_transition",
                             bt("refused", lang, reason=bt("refused.stage", lang, allowed=allowed))) from None
        except MoveRefused as exc:
            raise BoardError(409, "transition_refused", bt("refused", lang, reason=_refusal(exc, lang))) from None
        # the store announces the committed move to every board (handlers.orders.OrderEvents)
        return _json({"ok": True, "order_id": order_id, "stage": moved.order.stage.value,
                      "message": bt("moved", lang, order=moved.order.data.external_id,
                                    stage=label(moved.order.stage, lang))})

    @app.post("/orders/{order_id}/notes")
    async def add_note(order_id: DbId, body: NoteBody, who: Changer) -> Response:
        detail = await visible_detail(order_id, who)
        note = await services.add_note(detail, body.text.strip() or body.text, who.user.name)
        await services.events.publish({"kind": "noted", "order_id": order_id, "region": detail.order.region,
                                       "by": who.user.name})
        return _json({**note, "message": bt("note.saved", lang, category=note.get("category") or "—")}, 201)

    @app.post("/notes/{note_id}/category")
    async def correct_category(note_id: DbId, body: CategoryBody, who: Changer) -> Response:
        """The one correction use case (as `POST /api/notes/{id}/category`, the chat button and the CLI): audited,
        and later similar notes are classified with it."""
        if services.notes is None:
            raise BoardError(404, "not_found", bt("relabel.note_not_found", lang))
        actor = Actor(who.user.id, who.user.role, tuple(who.user.regions))
        try:
            done = await relabel(services.notes, note_id, body.category.strip(), who.user.name,
                                 actor, "board", services.clock.now())
        except RelabelRefused as exc:
            status = {"note_not_found": 404, "forbidden": 403, "unknown_category": 422}.get(exc.code, 409)
            raise BoardError(status, exc.code, bt(f"relabel.{exc.code}", lang)) from None
        name = dict(category_names(services.rules())).get(done.category, (done.category, done.category))
        return _json({"ok": True, **done.as_dict(),
                      "message": bt("relabel.saved", lang, category=name[0] if lang == "zh" else name[1])})

    @app.post("/approvals/{approval_id}/decision")
    async def decide(approval_id: DbId, body: DecisionBody, who: Changer) -> Response:
        approval = await services.directory.approval(approval_id)
        if approval is None:
            raise BoardError(404, "not_found", bt("decision.not_found", lang))
        outcome = await services.decide(who.user, approval_id, body.decision, body.reason.strip())
        status = {"approved": 200, "rejected": 200, "not_permitted": 403, "own_request": 403,
                  "already_decided": 409, "superseded": 409, "reason_required": 422, "not_found": 404}.get(outcome, 409)
        key = f"decision.{outcome}" if f"decision.{outcome}" in words(lang) else "decision.not_permitted"
        if status != 200:
            raise BoardError(status, "not_allowed" if status == 403 else outcome, bt(key, lang))
        # the decide use case's store announces the decision (and its move) to every board after its commit
        return _json({"ok": True, "outcome": outcome, "order_id": approval.order_id, "message": bt(key, lang)})

    # --- live updates -------------------------------------------------------------------------------------------

    @app.get("/events")
    async def events(request: Request, who: Who) -> StreamingResponse:
        """Server-sent events: one `change` per order change this viewer may see; a comment every 15 s."""

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 3000\n: connected\n\n"
            async for event in services.events.subscribe():
                if await request.is_disconnected():
                    break
                if event.get("kind") == "ping":
                    yield b": ping\n\n"
                    continue
                if not who.sees(event.get("region")):
                    continue
                yield b"event: change\ndata: " + orjson.dumps(event, default=str) + b"\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status_code=status, media_type="application/json")


_REFUSALS = {"awaiting_approval": "refused.approval", "changed": "refused.changed",
             "reason_required": "refused.reason"}


def _refusal(exc: MoveRefused, lang: str) -> str:
    """The move use case's refusal in the board's language, by its code (`MoveRefused.code`); a refusal without
    a board text of its own is shown as the use case words it."""
    key = _REFUSALS.get(exc.code)
    return bt(key, lang) if key else str(exc)


__all__ = ["create_board", "BoardError", "Viewer", "LINK_TTL"]
