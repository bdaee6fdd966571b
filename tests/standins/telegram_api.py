"""A local stand-in of the Telegram Bot API, so python-telegram-bot is tested over real HTTP without the internet.

It behaves like the real server where OrderHub depends on it: `POST /bot<token>/<method>` with JSON, form or
multipart bodies (PTB sends form fields whose values are JSON-encoded), `{"ok": true, "result": ...}` envelopes,
message ids per chat, HTML parse-mode validation, the 4,096-character limit measured after entity parsing, "message is
not modified" on an identical edit, 409 from getUpdates while a webhook is set, and long polling. Every call is
recorded. Faults are injected deterministically (seeded RNG): a share of calls answered 429 with `retry_after`, a
share answered 500, blocked chats (403), missing chats (400), slow answers (for client timeouts), or scripted answers.

Run it with the `telegram_api` fixture (`running_standin`, served by tests/standins/base.py), which starts uvicorn on
127.0.0.1:<free port> in a thread, so both async tests and sync CLI tests (which call `asyncio.run`) can reach it.
"""

from __future__ import annotations

import asyncio
import email.policy
import html
import json
import re
import threading
import time
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.standins.base import ScriptedFaults, SeededFaults, serving

TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
BOT_USER = {"id": 7000001, "is_bot": True, "first_name": "OrderHub", "username": "OrderHubBot"}

# Fields PTB (and other clients) send as JSON-encoded strings inside a form body.
_JSON_FIELDS = {"reply_markup", "commands", "allowed_updates", "link_preview_options", "reply_parameters", "scope",
                "entities"}
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler",
                 "span", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class ApiFault(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


@dataclass
class Faults(SeededFaults[ApiFault]):
    """Seeded faults (tests/standins/base.py) as the Bot API answers them: 429 with `retry_after`, or 500."""

    share_429: float = 0.0
    retry_after: int = 1
    methods: frozenset[str] = frozenset({"sendmessage"})

    def __post_init__(self) -> None:
        self.methods = frozenset(m.lower() for m in self.methods)  # Bot API method names are case-insensitive
        super().__post_init__()

    @property
    def throttle_share(self) -> float:
        return self.share_429

    def throttled(self) -> ApiFault:
        return ApiFault(429, f"Too Many Requests: retry after {self.retry_after}", {"retry_after": self.retry_after})

    def server_error(self) -> ApiFault:
        return ApiFault(500, "Internal Server Error")


@dataclass(frozen=True)
class Call:
    method: str  # lower case, as dispatched
    params: dict[str, Any]
    status: int
    content_type: str


def parse_html(text: str) -> str:
    """Validate Telegram-HTML the way the server does and return the plain text the user would see."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "<":
            m = _TAG.match(text, pos)
            if not m or m.group(2).lower() not in _ALLOWED_TAGS:
                raise ApiFault(400, f"Bad Request: can't parse entities: unsupported start tag at byte offset {pos}")
            closing, name = m.group(1) == "/", m.group(2).lower()
            if closing:
                if not stack or stack.pop() != name:
                    raise ApiFault(400, f"Bad Request: can't parse entities: unmatched end tag at offset {pos}")
            else:
                stack.append(name)
            pos = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, pos)
            if not m:
                raise ApiFault(400, f"Bad Request: can't parse entities: unescaped '&' at byte offset {pos}")
            out.append(html.unescape(m.group(0)))
            pos = m.end()
        elif ch == ">":
            raise ApiFault(400, f"Bad Request: can't parse entities: unescaped '>' at byte offset {pos}")
        else:
            out.append(ch)
            pos += 1
    if stack:
        raise ApiFault(400, f"Bad Request: can't parse entities: can't find end tag corresponding to <{stack[-1]}>")
    return "".join(out)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


class TelegramStandIn(ScriptedFaults[ApiFault]):
    """State and behaviour of the fake Bot API; `app` is the ASGI application serving it."""

    def __init__(self, token: str = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz") -> None:
        self.token = token
        self.url = ""  # set by serve_in_thread: the API root, as in ORDERHUB_TELEGRAM_API_URL
        self.faults = Faults()
        self.blocked_chats: set[str] = set()  # 403 "bot was blocked by the user"
        self.missing_chats: set[str] = set()  # 400 "chat not found"
        self.scripted: dict[str, list[ApiFault | None]] = {}  # method -> next answers (None: behave normally)
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, int], dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self._next_message_id: dict[str, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1000
        self._lock = threading.Lock()
        self.files: dict[str, bytes] = {}  # file_id -> content (photos users sent), served by getFile + /file/
        self.photos: list[dict[str, Any]] = []  # sendPhoto: {"chat_id", "data", "caption", "message_id"}
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                                     Route("/file/bot{token}/{path:path}", self._file, methods=["GET"])])

    # --- helpers for tests ----------------------------------------------------------------------------------------

    def ok_calls(self, method: str) -> list[dict[str, Any]]:
        """Parameters of the calls to `method` that succeeded, in order."""
        with self._lock:
            return [c.params for c in self.calls if c.method == method.lower() and c.status == 200]

    def all_calls(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method.lower()]

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; assigns and returns its update_id."""
        with self._lock:
            self._next_update_id += 1
            update = {**update, "update_id": self._next_update_id}
            self._updates.append(update)
            return self._next_update_id

    def add_file(self, content: bytes) -> str:
        """A file a user sent (a photo); returns its file_id, as Telegram puts it in the message's `photo`."""
        with self._lock:
            file_id = f"F{len(self.files) + 1:04d}-{len(content)}"
            self.files[file_id] = content
            return file_id

    async def _file(self, request: Request) -> Response:
        """The Bot API's file download: <root>/file/bot<token>/<file_path> from getFile."""
        if request.path_params["token"] != self.token:
            return Response(status_code=401)
        content = self.files.get(request.path_params["path"].removeprefix("photos/"))
        return Response(status_code=404) if content is None else Response(content, media_type="image/jpeg")

    def pending_updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._updates)

    def script(self, method: str, status: int, description: str = "", parameters: dict[str, Any] | None = None
               ) -> None:
        """Answer the next call to `method` with this (status 200: behave normally for that call)."""
        fault = None if status == 200 else ApiFault(status, description, parameters)
        self.scripted.setdefault(method.lower(), []).append(fault)

    # --- HTTP -----------------------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"].lower()  # Telegram method names are case-insensitive
        ctype = request.headers.get("content-type", "")
        params = await _read_params(request)
        if request.path_params["token"] != self.token:
            return self._record(method, params, ctype, ApiFault(401, "Unauthorized"))
        fault = self._next_fault(method)
        if self.faults.delay_s and method in self.faults.methods:
            await asyncio.sleep(self.faults.delay_s)
        if fault is not None:
            return self._record(method, params, ctype, fault)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._record(method, params, ctype, ApiFault(404, "Not Found"))
        try:
            result = await handler(params)
        except ApiFault as exc:
            return self._record(method, params, ctype, exc)
        return self._record(method, params, ctype, None, result)

    def _record(self, method: str, params: dict[str, Any], ctype: str, fault: ApiFault | None,
                result: Any = None) -> JSONResponse:
        status = fault.status if fault else 200
        with self._lock:
            self.calls.append(Call(method, params, status, ctype.split(";")[0]))
        if fault is None:
            return JSONResponse({"ok": True, "result": result})
        body: dict[str, Any] = {"ok": False, "error_code": fault.status, "description": fault.description}
        if fault.parameters:
            body["parameters"] = fault.parameters
        return JSONResponse(body, status_code=fault.status)

    # --- methods --------------------------------------------------------------------------------------------------

    async def _m_getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id", ""))
        content = self.files.get(file_id)
        if content is None:
            raise ApiFault(400, "Bad Request: invalid file_id")
        if len(content) > 20 * 1024 * 1024:  # the Bot API serves at most 20 MB
            raise ApiFault(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(content),
                "file_path": f"photos/{file_id}"}

    async def _m_getme(self, _: dict[str, Any]) -> dict[str, Any]:
        return dict(BOT_USER)

    def _check_chat(self, chat_id: str) -> None:
        if chat_id in self.blocked_chats:
            raise ApiFault(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.missing_chats or not chat_id:
            raise ApiFault(400, "Bad Request: chat not found")

    def _check_text(self, params: dict[str, Any]) -> str:
        text = str(params.get("text", ""))
        shown = parse_html(text) if str(params.get("parse_mode", "")).upper() == "HTML" else text
        if not shown.strip():
            raise ApiFault(400, "Bad Request: message text is empty")
        if utf16_len(shown) > TEXT_LIMIT:
            raise ApiFault(400, "Bad Request: message is too long")
        _check_markup(params.get("reply_markup"))
        return shown

    def _message(self, chat_id: str, message_id: int, shown: str, params: dict[str, Any]) -> dict[str, Any]:
        cid = int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id
        msg: dict[str, Any] = {
            "message_id": message_id, "date": int(time.time()), "from": dict(BOT_USER), "text": shown,
            "chat": {"id": cid, "type": "private" if isinstance(cid, int) and cid > 0 else "supergroup",
                     **({"first_name": "User"} if isinstance(cid, int) and cid > 0 else {"title": "Group"})},
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        return msg

    async def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = str(params.get("chat_id", ""))
        self._check_chat(chat_id)
        shown = self._check_text(params)
        with self._lock:
            mid = self._next_message_id.get(chat_id, 100) + 1
            self._next_message_id[chat_id] = mid
            self.messages[(chat_id, mid)] = {"text": params["text"], "reply_markup": params.get("reply_markup")}
        return self._message(chat_id, mid, shown, params)

    async def _m_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        """An uploaded photo (multipart `photo`): must be a PNG or JPEG of at most 10 MB, caption <= 1,024."""
        chat_id = str(params.get("chat_id", ""))
        self._check_chat(chat_id)
        data = (params.get("_files") or {}).get("photo")
        if data is None:
            raise ApiFault(400, "Bad Request: there is no photo in the request")
        if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")):
            raise ApiFault(400, "Bad Request: IMAGE_PROCESS_FAILED")
        if len(data) > 10 * 1024 * 1024:
            raise ApiFault(400, "Bad Request: file is too big")
        caption = str(params.get("caption", ""))
        shown = parse_html(caption) if str(params.get("parse_mode", "")).upper() == "HTML" else caption
        if utf16_len(shown) > 1024:
            raise ApiFault(400, "Bad Request: message caption is too long")
        with self._lock:
            mid = self._next_message_id.get(chat_id, 100) + 1
            self._next_message_id[chat_id] = mid
            self.photos.append({"chat_id": chat_id, "data": data, "caption": shown, "message_id": mid})
        msg = self._message(chat_id, mid, "", params)
        del msg["text"]
        msg["caption"] = shown
        msg["photo"] = [{"file_id": f"P{mid}", "file_unique_id": f"P{mid}", "width": 1, "height": 1,
                         "file_size": len(data)}]
        return msg

    def _existing(self, params: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
        chat_id = str(params.get("chat_id", ""))
        self._check_chat(chat_id)
        try:
            mid = int(params.get("message_id", 0))
        except ValueError:
            raise ApiFault(400, "Bad Request: message identifier is not specified") from None
        stored = self.messages.get((chat_id, mid))
        if stored is None:
            raise ApiFault(400, "Bad Request: message to edit not found")
        return chat_id, mid, stored

    async def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, mid, stored = self._existing(params)
        shown = self._check_text(params)
        new = {"text": params["text"], "reply_markup": params.get("reply_markup")}
        if new == stored:
            raise ApiFault(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        self.messages[(chat_id, mid)] = new
        return self._message(chat_id, mid, shown, params)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, mid, stored = self._existing(params)
        _check_markup(params.get("reply_markup"))
        if stored.get("reply_markup") == params.get("reply_markup"):
            raise ApiFault(400, "Bad Request: message is not modified")
        stored["reply_markup"] = params.get("reply_markup")
        return self._message(chat_id, mid, html.unescape(re.sub(r"<[^>]+>", "", stored["text"])), params)

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise ApiFault(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text", ""))) > 200:
            raise ApiFault(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    async def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not commands:
            raise ApiFault(400, "Bad Request: commands must be a non-empty list")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))) or not c.get("description"):
                raise ApiFault(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands = commands
        return True

    async def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiFault(400, "Bad Request: secret token contains unallowed characters")
        if not str(params.get("url", "")).startswith("https://"):
            raise ApiFault(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {"url": params["url"], "secret_token": secret}
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            with self._lock:
                self._updates.clear()
        return True

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiFault(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                                "to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while True:
            with self._lock:
                # Calling getUpdates with an offset confirms every update with a smaller id: they are gone for good.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                batch = self._updates[:limit]
            if batch or time.monotonic() >= deadline:
                return batch
            await asyncio.sleep(0.02)


def _check_markup(markup: Any) -> None:
    if isinstance(markup, dict):
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                    raise ApiFault(400, "Bad Request: BUTTON_DATA_INVALID")


async def _read_params(request: Request) -> dict[str, Any]:
    """JSON, urlencoded or multipart: PTB posts a form whose values are JSON-encoded (strings stay bare)."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        body = await request.body()
        if body:
            params.update(json.loads(body))
    elif ctype.startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    elif ctype.startswith("multipart/form-data"):
        # The stdlib email parser reads multipart bodies; no python-multipart needed.
        raw = b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + await request.body()
        for part in BytesParser(policy=email.policy.HTTP).parsebytes(raw).iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():
                params[str(name)] = "<file>"
                params.setdefault("_files", {})[str(name)] = payload  # the bytes, for sendPhoto's checks
            else:
                params[str(name)] = payload.decode()
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            with suppress(ValueError):  # a plain string where JSON was possible: keep it
                params[key] = json.loads(params[key])
    if "chat_id" in params:
        params["chat_id"] = str(params["chat_id"])
    return params


def running_standin(token: str | None = None) -> AbstractContextManager[TelegramStandIn]:
    """A Bot API stand-in served on a free local port (see tests/standins/base.py) for the test's duration."""
    return serving(TelegramStandIn(token) if token else TelegramStandIn())
