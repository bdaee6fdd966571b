"""A ChatChannel that prints a readable transcript with rich: the `orderhub demo` shows the chat this way."""

from __future__ import annotations

import itertools

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from engine.text_cli import tc
from handlers.chat import Capabilities, Card, ChatRef, Outgoing


class ConsoleChannel:
    """Implements `handlers.chat.ChatChannel`; `names` maps chat ids to people for a friendlier transcript."""

    def __init__(self, console: Console | None = None, *, platform: str = "console",
                 names: dict[str, str] | None = None, show_at_most: int | None = None, language: str = "zh") -> None:
        self.platform = platform
        self.capabilities = Capabilities(photos=False, group_prefixes=("-", "group:"))  # prints what it is told
        self.language = language
        self.console = console or Console()
        self.names = names or {}
        self.show_at_most = show_at_most  # a busy demo day sends hundreds of cards: show a few, count the rest
        self.shown = 0
        self.hidden = 0
        self._ids = itertools.count(1)

    def _visible(self) -> bool:
        if self.show_at_most is not None and self.shown >= self.show_at_most:
            self.hidden += 1
            return False
        self.shown += 1
        return True

    def summarise_hidden(self, what: str = "messages") -> None:
        """Say how many messages went out without being printed, then start counting afresh."""
        if self.hidden:
            self.console.print(f"[dim]{tc('d.hidden', self.language, n=self.hidden, what=what)}[/]")
        self.shown = self.hidden = 0

    def _who(self, chat_id: str) -> str:
        return self.names.get(chat_id, chat_id)

    @staticmethod
    def _card_body(card: Card) -> Text:
        body = Text()
        for key, value in card.fields:
            body.append(f"{key}: ", style="bold")
            body.append(f"{value}\n")
        if card.status:
            body.append(card.status + "\n", style="italic")
        if card.buttons:
            body.append("  ".join(f"[ {b.label} ]" for b in card.buttons), style="cyan")
        return body

    async def send(self, message: Outgoing) -> ChatRef:
        ref = ChatRef(self.platform, message.chat_id, str(next(self._ids)))
        if not self._visible():
            return ref
        title = f"→ {self._who(message.chat_id)}  #{ref.message_id}"
        if message.card is not None:
            self.console.print(Panel(self._card_body(message.card), title=f"{title} · {message.card.title}",
                                     title_align="left"))
        else:
            extra = tc("d.reply_requested", self.language) if message.force_reply else ""
            extra += tc("d.contact_button", self.language) if message.request_contact else ""
            self.console.print(Panel(Text(message.text + extra), title=title, title_align="left"))
        return ref

    async def update(self, ref: ChatRef, card: Card) -> None:
        if not self._visible():
            return
        self.console.print(Panel(self._card_body(card), title=f"✎ {self._who(ref.chat_id)} #{ref.message_id} {tc('d.edited', self.language)} · "
                                                              f"{card.title}", title_align="left", style="dim"))

    async def answer(self, callback_id: str, text: str, alert: bool = False) -> None:
        if text:
            self.console.print(f"  [{'bold red' if alert else 'green'}]💬 {text}[/]")

    def said(self, who: str, text: str) -> None:
        """Print what a person typed or pressed (the demo narrates the inbound side with this)."""
        self.console.print(f"[bold magenta]{who}[/]: {text}")
