"""OCR accuracy bench: generated photos of return waybill labels → RapidOCR → engine.refunds.find_waybill.

    python bench/ocr.py [--photos 120] [--seed 7]

Each photo is a label in one of several layouts (SF, Deppon, a plain courier slip, a barcode-heavy slip), with a
random waybill number, rotated ±15°, blurred, JPEG-compressed with noise, and warped like a phone photo taken at an
angle. A photo counts as read when the number found is exactly the one printed. Prints a table per layout.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402

from bot.adapters.ocr import RapidOcrReader  # noqa: E402
from engine.refunds import find_waybill  # noqa: E402

FONT_PATHS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for p in FONT_PATHS:
        if Path(p).exists():
            return ImageFont.truetype(p, size)
    return ImageFont.load_default(size=size)


def number(rng: random.Random, layout: str) -> str:
    if layout == "deppon":
        return "DPK" + "".join(rng.choice("0123456789") for _ in range(12))
    return "SF" + "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 15)))


def barcode(draw: ImageDraw.ImageDraw, rng: random.Random, x: int, y: int, w: int, h: int) -> None:
    pos = x
    while pos < x + w:
        bw = rng.choice((2, 3, 4, 6))
        if rng.random() < 0.55:
            draw.rectangle((pos, y, pos + bw - 1, y + h), fill="black")
        pos += bw


def label(rng: random.Random, layout: str, wb: str) -> Image.Image:
    w, h = 900, 600
    im = Image.new("RGB", (w, h), (250, 250, 245))
    d = ImageDraw.Draw(im)
    d.rectangle((10, 10, w - 10, h - 10), outline="black", width=4)
    if layout == "sf":
        d.rectangle((10, 10, w - 10, 110), fill=(20, 20, 20))
        d.text((40, 30), "SF EXPRESS", font=font(54), fill="white")
        barcode(d, rng, 60, 140, 780, 120)
        d.text((60, 280), wb, font=font(58), fill="black")
        d.text((60, 380), "To: Merchant Returns Dept. Hangzhou", font=font(30), fill="black")
        d.text((60, 430), "Tel 0571-8888 8888", font=font(30), fill="black")
    elif layout == "deppon":
        d.text((40, 30), "DEPPON", font=font(60), fill=(0, 60, 160))
        d.text((40, 120), "Waybill No.", font=font(32), fill="black")
        d.text((40, 170), wb, font=font(60), fill="black")
        barcode(d, rng, 40, 270, 820, 110)
        d.text((40, 420), "Return to: Suzhou base 2", font=font(30), fill="black")
    elif layout == "slip":  # a plain courier slip: the number spaced in groups, small print around it
        grouped = wb[:2] + " " + " ".join(wb[i:i + 4] for i in range(2, len(wb), 4))
        d.text((40, 40), "Return slip   Order TM20251111-000123", font=font(30), fill="black")
        d.line((30, 100, w - 30, 100), fill="black", width=3)
        d.text((40, 140), "Waybill:", font=font(36), fill="black")
        d.text((40, 200), grouped, font=font(56), fill="black")
        d.text((40, 320), "Phone 138****8000   Qty 1", font=font(30), fill="black")
        barcode(d, rng, 40, 400, 820, 120)
    else:  # "dense": many lines, the number small under a barcode
        for i in range(5):
            d.text((40, 30 + 40 * i), f"Line {i}: Hangzhou Xihu district {rng.randint(1, 999)}", font=font(26),
                   fill=(60, 60, 60))
        barcode(d, rng, 40, 250, 820, 140)
        d.text((200, 410), wb, font=font(44), fill="black")
    return im


def perspective(im: Image.Image, rng: random.Random) -> Image.Image:
    """A phone held at an angle: each corner pulled in by up to 6 % of the side."""
    w, h = im.size
    j = lambda s: rng.uniform(0, 0.06) * s  # noqa: E731
    quad = (j(w), j(h), j(w), h - j(h), w - j(w), h - j(h), w - j(w), j(h))
    return im.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BICUBIC, fillcolor=(120, 110, 100))


def photo(rng: random.Random, layout: str) -> tuple[bytes, str]:
    wb = number(rng, layout)
    im = label(rng, layout, wb)
    canvas = Image.new("RGB", (1200, 900), (rng.randint(90, 160),) * 3)
    canvas.paste(im, (150, 150))
    im = canvas.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC, expand=False,
                       fillcolor=(100, 100, 100))
    im = perspective(im, rng)
    im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.6)))
    noise = Image.effect_noise(im.size, rng.uniform(8, 25)).convert("RGB")
    im = Image.blend(im, noise, 0.08)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=rng.randint(35, 75))
    return buf.getvalue(), wb


@dataclass
class Row:
    photos: int = 0
    read: int = 0
    seconds: float = 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=120)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    layouts = ["sf", "deppon", "slip", "dense"]
    reader = RapidOcrReader()
    t0 = time.perf_counter()
    reader.read_sync(photo(random.Random(0), "sf")[0])  # load the models outside the timing
    load = time.perf_counter() - t0
    rows = {k: Row() for k in layouts}
    misses: list[str] = []
    for i in range(args.photos):
        layout = layouts[i % len(layouts)]
        data, wb = photo(rng, layout)
        t = time.perf_counter()
        text = reader.read_sync(data)
        found = find_waybill(text)
        r = rows[layout]
        r.seconds += time.perf_counter() - t
        r.photos += 1
        if found is not None and found.waybill == wb:
            r.read += 1
        else:
            misses.append(f"{layout}: printed {wb}, found {found.waybill if found else None}")
    total = Row(sum(r.photos for r in rows.values()), sum(r.read for r in rows.values()),
                sum(r.seconds for r in rows.values()))
    print(f"models loaded in {load:.2f} s (once)")
    print(f"{'layout':<8} {'photos':>6} {'read exactly':>12} {'share':>7} {'ms/photo':>9}")
    for name, r in [*rows.items(), ("all", total)]:
        print(f"{name:<8} {r.photos:>6} {r.read:>12} {r.read / r.photos:>7.1%} {1000 * r.seconds / r.photos:>9.0f}")
    for m in misses[:10]:
        print("miss:", m)
    return 0 if total.read / total.photos >= 0.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
