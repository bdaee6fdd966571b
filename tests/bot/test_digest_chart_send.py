"""The digest chart reaches chats as an image: Telegram sendPhoto and WeCom media/upload + image, via the stand-ins
over real HTTP; a platform without photos gets the numbers as text."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator

import pytest

from bot.platforms.telegram.channel import CAPTION_LIMIT, TelegramChannel
from bot.platforms.wecom.channel import WecomChannel
from handlers.chat import Capabilities, Card, ChatRef, Outgoing, OutgoingPhoto, PermanentSendError, send_photo_or_text
from tests.bot.conftest import no_sleep, open_telegram
from tests.standins.telegram_api import TelegramStandIn
from tests.standins.wecom_api import WecomStandIn

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_png() -> bytes:
    """A valid 1×1 PNG (the real chart is rendered in test_digest_chart.py; here only transport matters)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


@pytest.fixture
async def tg(telegram_api: TelegramStandIn) -> AsyncIterator[TelegramChannel]:
    async with open_telegram(telegram_api, sleep=no_sleep) as ch:
        yield ch


async def test_telegram_sends_the_png_with_sendphoto_and_the_numbers_as_caption(
        tg: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    png = tiny_png()
    ref = await send_photo_or_text(tg, OutgoingPhoto("4242", png, "各阶段在途订单：待确认 3 <b>"))
    [photo] = telegram_api.photos
    assert photo["data"] == png and photo["chat_id"] == "4242"
    assert photo["caption"] == "各阶段在途订单：待确认 3 <b>"  # escaped: shown literally, not parsed as a tag
    assert ref == ChatRef("telegram", "4242", str(photo["message_id"]))
    assert telegram_api.ok_calls("sendMessage") == []


async def test_telegram_a_caption_over_1024_characters_continues_as_text(
        tg: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    caption = "\n".join(f"第 {i} 行：" + "数" * 40 for i in range(60))
    await tg.send_photo(OutgoingPhoto("4242", tiny_png(), caption))
    [photo] = telegram_api.photos
    assert len(photo["caption"]) <= CAPTION_LIMIT
    rest = "\n".join(m["text"] for m in telegram_api.ok_calls("sendMessage"))
    assert (photo["caption"] + "\n" + rest) == caption  # nothing lost, nothing repeated


async def test_telegram_refuses_a_non_image_like_the_real_api(tg: TelegramChannel,
                                                              telegram_api: TelegramStandIn) -> None:
    with pytest.raises(PermanentSendError):
        await tg.send_photo(OutgoingPhoto("4242", b"not a png at all", "x"))
    assert telegram_api.photos == []


async def test_wecom_uploads_the_png_as_image_media_then_sends_an_image_message_and_the_text(
        wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    png = tiny_png()
    ref = await send_photo_or_text(wecom, OutgoingPhoto("zhangsan", png, "本周异常类别：缺料 5"))
    [upload] = wecom_api.all_calls("media/upload")
    assert upload.query["type"] == "image" and upload.errcode == 0
    [image] = wecom_api.images
    assert image["touser"] == "zhangsan" and image["data"] == png and image["data"].startswith(PNG_MAGIC)
    kinds = [b["msgtype"] for b in wecom_api.ok_calls("message/send")]
    assert kinds == ["image", "text"]  # the image first, then the numbers
    assert wecom_api.ok_calls("message/send")[1]["text"]["content"] == "本周异常类别：缺料 5"
    assert ref.platform == "wecom" and ref.chat_id == "zhangsan"


async def test_wecom_an_upload_error_is_a_send_error_and_no_image_is_sent(
        wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    with pytest.raises(PermanentSendError):
        await wecom.send_photo(OutgoingPhoto("zhangsan", b"GIF89a-not-accepted", "x"))
    assert wecom_api.images == [] and wecom_api.ok_calls("message/send") == []


class TextOnly:
    """A channel without send_photo (the console, a future platform)."""

    platform = "console"
    capabilities = Capabilities(photos=False)

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> ChatRef:
        self.sent.append(message)
        return ChatRef("console", message.chat_id, str(len(self.sent)))

    async def update(self, ref: ChatRef, card: Card) -> None: ...

    async def answer(self, callback_id: str, text: str, alert: bool = False) -> None: ...


async def test_a_platform_without_photos_gets_the_caption_as_text() -> None:
    ch = TextOnly()
    await send_photo_or_text(ch, OutgoingPhoto("c1", tiny_png(), "各阶段在途订单：待确认 3"))
    assert [m.text for m in ch.sent] == ["各阶段在途订单：待确认 3"]


class PhotosOff(TextOnly):
    """Has send_photo, but declares it cannot show photos: the declaration is what counts."""

    async def send_photo(self, photo: OutgoingPhoto) -> ChatRef:
        raise AssertionError("a platform without the photos capability got a photo")


async def test_the_photos_capability_decides_not_the_method() -> None:
    ch = PhotosOff()
    await send_photo_or_text(ch, OutgoingPhoto("c1", tiny_png(), "各阶段在途订单：待确认 3"))
    assert [m.text for m in ch.sent] == ["各阶段在途订单：待确认 3"]
    with pytest.raises(PermanentSendError):
        await send_photo_or_text(ch, OutgoingPhoto("c1", tiny_png(), ""))
