"""The offline OCR adapter on a generated return-waybill photo (bench/ocr.py's generator), under the test network
guard: the bundled ONNX models read it without downloading anything."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from bot.adapters.ocr import RapidOcrReader
from engine.refunds import find_waybill

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ocr.py"


@pytest.mark.slow
async def test_reads_a_rotated_blurred_label_offline() -> None:
    spec = importlib.util.spec_from_file_location("bench_ocr", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_ocr"] = bench  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    data, printed = bench.photo(random.Random(3), "sf")
    text = await RapidOcrReader().read(data)
    found = find_waybill(text)
    assert found is not None and found.waybill == printed


async def test_an_undecodable_image_is_an_error_the_use_case_catches() -> None:
    with pytest.raises(Exception):
        await RapidOcrReader().read(b"\xff\xd8\xff\xe0 not really a jpeg")
