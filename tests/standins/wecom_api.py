"""A local stand-in of the WeCom server API, so wechatpy is tested over real HTTP without the internet.

It behaves like the real server where OrderHub depends on it: `GET /cgi-bin/gettoken?corpid&corpsecret`, and
`POST /cgi-bin/message/send` / `message/update_template_card` with `?access_token=`; answers are JSON with
`errcode`/`errmsg` (HTTP 200 even for errors, as WeCom does). It checks what the real server checks or silently
truncates: text content ≤ 2,048 bytes, template cards (button_interaction, unique task_id, ≤ 6 rows and buttons,
button key ≤ 1,024 bytes, title ≤ 36 characters), unknown userids (81013), response codes usable once, and the
duplicate check (`enable_duplicate_check=1`: the same request JSON within `duplicate_check_interval` is answered ok
and not delivered; `delivered()` lists what reached someone). Every call is recorded. Faults: a seeded share of calls answered errcode 45009 or HTTP 500, slow answers (client timeouts),
an expired token (42001 once), or scripted answers.
"""

from __future__ import annotations

import asyncio
import email.policy
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from email.parser import BytesParser
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.standins.base import ScriptedFaults, SeededFaults, serving

CORP_ID = "ww0123456789abcdef"
SECRET = "S3cr3t-app-secret-0123456789abcdefghijklmnopq"
AGENT_ID = 1000002
TEXT_LIMIT_BYTES = 2048


class Fault(Exception):
    def __init__(self, errcode: int = 0, errmsg: str = "", http_status: int = 200) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg, self.http_status = errcode, errmsg, http_status


@dataclass
class Faults(SeededFaults[Fault]):
    """Seeded faults (tests/standins/base.py) as WeCom answers them: errcode 45009 (HTTP 200), or HTTP 500."""

    share_45009: float = 0.0
    methods: frozenset[str] = frozenset({"message/send"})

    @property
    def throttle_share(self) -> float:
        return self.share_45009

    def throttled(self) -> Fault:
        return Fault(45009, "api freq out of limit")

    def server_error(self) -> Fault:
        return Fault(http_status=500, errmsg="Internal Server Error")


@dataclass(frozen=True)
class Call:
    method: str  # "gettoken", "message/send", …
    query: dict[str, str]
    body: dict[str, Any]
    http_status: int
    errcode: int


class WecomStandIn(ScriptedFaults[Fault]):
    """State and behaviour of the fake WeCom API; `app` is the ASGI application serving it."""

    def __init__(self, corp_id: str = CORP_ID, secret: str = SECRET) -> None:
        self.corp_id, self.secret = corp_id, secret
        self.url = ""  # set by running_standin: the API root, as in ORDERHUB_WECOM_API_URL
        self.faults = Faults()
        self.users: set[str] | None = None  # known userids; None: every userid exists
        self.scripted: dict[str, list[Fault | None]] = {}
        self.calls: list[Call] = []
        self.cards: dict[str, dict[str, Any]] = {}  # task_id -> {"touser", "card", "codes"}
        self.tokens: set[str] = set()
        self.media: dict[str, bytes] = {}  # media/upload: media_id -> bytes
        self.images: list[dict[str, Any]] = []  # image messages sent: {"touser", "media_id", "data"}
        self.expired: set[str] = set()
        self._codes: dict[str, str] = {}  # unused response_code -> task_id
        self._ids = itertools.count(1)
        self.now: Callable[[], float] = time.monotonic  # the clock of the duplicate check (tests may move it)
        self._sent_json: dict[str, tuple[float, str]] = {}  # accepted request JSON -> (when, msgid)
        self.duplicates: list[int] = []  # indexes into ok_calls("message/send") that were dropped as duplicates
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/cgi-bin/{method:path}", self._endpoint, methods=["GET", "POST"])])

    # --- helpers for tests ----------------------------------------------------------------------------------------

    def ok_calls(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.body for c in self.calls if c.method == method and c.http_status == 200 and c.errcode == 0]

    def all_calls(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def script(self, method: str, errcode: int = 0, errmsg: str = "", http_status: int = 200) -> None:
        """Answer the next call to `method` with this (errcode 0 and status 200: behave normally for that call)."""
        fault = None if errcode == 0 and http_status == 200 else Fault(errcode, errmsg, http_status)
        self.scripted.setdefault(method, []).append(fault)

    def expire_tokens(self) -> None:
        """Every token handed out so far now answers 42001 (as after its 7,200 s)."""
        with self._lock:
            self.expired |= self.tokens

    def click_code(self, task_id: str) -> str:
        """A fresh response_code, as WeCom puts into the callback of a click on that card."""
        code = f"rc-click-{next(self._ids)}"
        with self._lock:
            self._codes[code] = task_id
        return code

    # --- HTTP -----------------------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        query = dict(request.query_params)
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        try:
            body = (_multipart(ctype, raw) if ctype.startswith("multipart/form-data")
                    else json.loads(raw) if raw else {})
        except ValueError:
            return self._record(method, query, {}, Fault(40058, "invalid json"))
        if method == "media/upload":
            body = {**body, "type": query.get("type", "")}
        fault = self._next_fault(method)
        if self.faults.delay_s and method in self.faults.methods:
            await asyncio.sleep(self.faults.delay_s)
        if fault is not None:
            return self._record(method, query, body, fault)
        try:
            if method == "gettoken":
                result = self._gettoken(query)
            else:
                self._check_token(query.get("access_token", ""))
                if method == "media/get":
                    return self._media_get(query)
                handler = getattr(self, "_m_" + method.replace("/", "_"), None)
                if handler is None:
                    raise Fault(http_status=404, errmsg="not found")
                result = handler(body)
        except Fault as exc:
            return self._record(method, query, body, exc)
        return self._record(method, query, body, None, result)

    def _record(self, method: str, query: dict[str, str], body: dict[str, Any], fault: Fault | None,
                result: dict[str, Any] | None = None) -> Response:
        status = fault.http_status if fault else 200
        errcode = fault.errcode if fault else 0
        with self._lock:
            self.calls.append(Call(method, query, body, status, errcode))
        if status != 200:
            return Response("<html>500 Internal Server Error</html>", status_code=status, media_type="text/html")
        if fault is not None:
            return JSONResponse({"errcode": fault.errcode, "errmsg": fault.errmsg})
        return JSONResponse({"errcode": 0, "errmsg": "ok", **(result or {})})

    # --- methods --------------------------------------------------------------------------------------------------

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id:
            raise Fault(40013, "invalid corpid")
        if query.get("corpsecret") != self.secret:
            raise Fault(40001, "invalid credential")
        token = f"tok-{next(self._ids)}-{random.getrandbits(64):016x}"
        with self._lock:
            self.tokens.add(token)
        return {"access_token": token, "expires_in": 7200}

    def _check_token(self, token: str) -> None:
        if not token:
            raise Fault(41001, "access_token missing")
        if token in self.expired:
            raise Fault(42001, "access_token expired")
        if token not in self.tokens:
            raise Fault(40014, "invalid access_token")

    def _check_user(self, user: str) -> None:
        if not user or "|" in user or user == "@all":
            raise Fault(40003, f"invalid userid {user!r}")
        if self.users is not None and user not in self.users:
            raise Fault(81013, "user & party & tag all invalid")

    def delivered(self) -> list[dict[str, Any]]:
        """The message/send bodies that reached someone: accepted and not dropped as a duplicate."""
        with self._lock:
            dropped = set(self.duplicates)
        return [b for i, b in enumerate(self.ok_calls("message/send")) if i not in dropped]

    def _duplicate(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """WeCom's duplicate check: with enable_duplicate_check=1, a request whose JSON equals one accepted within
        duplicate_check_interval (default 1,800 s, at most 4 h) is answered ok and not delivered again."""
        if int(body.get("enable_duplicate_check", 0) or 0) != 1:
            return None
        interval = min(int(body.get("duplicate_check_interval", 1800) or 1800), 4 * 3600)
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
        now = self.now()
        with self._lock:
            seen = self._sent_json.get(key)
            if seen is not None and now - seen[0] < interval:
                self.duplicates.append(sum(1 for c in self.calls if c.method == "message/send"
                                           and c.http_status == 200 and c.errcode == 0))
                return {"invaliduser": "", "msgid": seen[1]}
        return None

    def _m_message_send(self, body: dict[str, Any]) -> dict[str, Any]:
        duplicate = self._duplicate(body)
        if duplicate is not None:
            return duplicate
        result = self._deliver(body)
        with self._lock:
            self._sent_json[json.dumps(body, sort_keys=True, ensure_ascii=False)] = (self.now(), result["msgid"])
        return result

    def _deliver(self, body: dict[str, Any]) -> dict[str, Any]:
        user = str(body.get("touser", ""))
        self._check_user(user)
        if int(body.get("agentid", 0)) != AGENT_ID:
            raise Fault(301002, "not allow operate another agent with this accesstoken")
        kind = body.get("msgtype")
        result: dict[str, Any] = {"invaliduser": "", "msgid": f"msg-{next(self._ids)}"}
        if kind == "text":
            content = str(body.get("text", {}).get("content", ""))
            if not content.strip():
                raise Fault(44004, "empty content")
            if len(content.encode()) > TEXT_LIMIT_BYTES:
                raise Fault(45002, "content size out of limit")
        elif kind == "image":
            media_id = str((body.get("image") or {}).get("media_id", ""))
            with self._lock:
                data = self.media.get(media_id)
                if data is None:
                    raise Fault(40007, "invalid media_id")
                self.images.append({"touser": user, "media_id": media_id, "data": data})
        elif kind == "template_card":
            card = body.get("template_card") or {}
            _check_card(card)
            task_id = card["task_id"]
            with self._lock:
                if task_id in self.cards:
                    raise Fault(40058, "task_id exists")
                code = f"rc-send-{next(self._ids)}"
                self._codes[code] = task_id
                self.cards[task_id] = {"touser": user, "card": card, "replaced": None}
            result["response_code"] = code
        else:
            raise Fault(40008, "invalid message type")
        return result

    def add_media(self, data: bytes) -> str:
        """A file a member sent the app (an image message's MediaId), for `media/get` to hand out."""
        media_id = f"media-in-{next(self._ids)}"
        with self._lock:
            self.media[media_id] = data
        return media_id

    def _media_get(self, query: dict[str, str]) -> Response:
        """`GET media/get?access_token&media_id`: the file itself (Content-Type by its content, Content-Length,
        Content-Disposition), or errcode 40007 as JSON for an unknown or expired media_id — as WeCom answers."""
        media_id = query.get("media_id", "")
        with self._lock:
            data = self.media.get(media_id)
        if data is None:
            raise Fault(40007, "invalid media_id")
        self._record("media/get", query, {}, None)
        kind = ("image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n"
                else "application/octet-stream")
        return Response(data, media_type=kind, headers={
            "Content-Disposition": f'attachment; filename="{media_id}.jpg"', "Cache-Control": "no-cache"})

    def _m_media_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        """Temporary media: `?type=image`, multipart field `media` with a filename; PNG/JPG, 5 B to 10 MB."""
        if body.get("type") != "image":
            raise Fault(40004, "invalid media type")
        files = body.get("_files") or {}
        if "media" not in files:
            raise Fault(41005, "media data missing")
        filename, data = files["media"]
        if not filename:
            raise Fault(40005, "invalid file type")
        if not 5 <= len(data) <= 10 * 1024 * 1024:
            raise Fault(40006, "invalid file size")
        if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")):
            raise Fault(40005, "invalid file type")
        media_id = f"media-{next(self._ids)}"
        with self._lock:
            self.media[media_id] = data
        return {"type": "image", "media_id": media_id, "created_at": "1700000000"}

    def _m_message_update_template_card(self, body: dict[str, Any]) -> dict[str, Any]:
        code = str(body.get("response_code", ""))
        with self._lock:
            task_id = self._codes.pop(code, None)  # a code works once
        if task_id is None:
            raise Fault(40058, "invalid response_code")
        for user in body.get("userids", []):
            self._check_user(str(user))
        stored = self.cards[task_id]
        if "template_card" in body:
            card = body["template_card"]
            _check_card(card)
            stored["card"], stored["replaced"] = card, None
        elif "button" in body:
            stored["replaced"] = body["button"].get("replace_name")
        else:
            raise Fault(40058, "nothing to update")
        return {"invaliduser": []}


def _multipart(ctype: str, raw: bytes) -> dict[str, Any]:
    """A multipart body as {"_files": {name: (filename, bytes)}, other fields: text} (stdlib parser)."""
    out: dict[str, Any] = {"_files": {}}
    message = BytesParser(policy=email.policy.HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            out["_files"][name] = (part.get_filename(), payload)
        else:
            out[name] = payload.decode()
    return out


def _check_card(card: dict[str, Any]) -> None:
    if card.get("card_type") != "button_interaction":
        raise Fault(40058, "unsupported card_type")
    if not card.get("task_id") or len(str(card["task_id"]).encode()) > 128:
        raise Fault(40058, "invalid task_id")
    if len(str(card.get("main_title", {}).get("title", ""))) > 36:
        raise Fault(40058, "main_title.title too long")
    if len(card.get("horizontal_content_list", [])) > 6:
        raise Fault(40058, "horizontal_content_list too long")
    if len(str(card.get("sub_title_text", ""))) > 160:
        raise Fault(40058, "sub_title_text too long")
    buttons = card.get("button_list") or []
    if not 1 <= len(buttons) <= 6:
        raise Fault(40058, "button_list must hold 1-6 buttons")
    for b in buttons:
        if not 1 <= len(str(b.get("key", "")).encode()) <= 1024:
            raise Fault(40058, "invalid button key")


def running_standin() -> AbstractContextManager[WecomStandIn]:
    """A WeCom API stand-in served on a free local port (see tests/standins/base.py) for the test's duration."""
    return serving(WecomStandIn())
