"""Offline OCR adapter: RapidOCR on ONNX Runtime (`rapidocr-onnxruntime`, whose wheel ships its PP-OCR models, so
nothing is downloaded at run time). It turns image bytes into text lines; what the text means is engine.refunds'.

The engine is loaded once, on first use (about a second), and each read runs in a worker thread so the event loop
keeps serving while a photo is read.
"""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

_MAX_SIDE = 1600  # phone photos are shrunk to this before reading: the detector gains nothing from 12 MP


class RapidOcrReader:
    """Implements handlers.refunds.OcrReader."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR

                self._engine = RapidOCR()
            return self._engine

    def read_sync(self, data: bytes) -> str:
        """The text of an image, one detected line per line (top to bottom); "" when nothing was read."""
        import numpy as np
        from PIL import Image, ImageOps

        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            if max(im.size) > _MAX_SIDE:
                im.thumbnail((_MAX_SIDE, _MAX_SIDE))
            arr = np.asarray(im)[:, :, ::-1]  # RGB → BGR, as OpenCV-based RapidOCR expects
        result, _ = self._get()(arr)
        if not result:
            return ""
        boxes = sorted(result, key=lambda r: (min(p[1] for p in r[0]), min(p[0] for p in r[0])))
        return "\n".join(str(r[1]) for r in boxes)

    async def read(self, data: bytes) -> str:
        return await asyncio.to_thread(self.read_sync, data)
