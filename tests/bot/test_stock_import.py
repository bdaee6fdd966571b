"""`orderhub stock import`: CSV (UTF-8/GBK) and XLSX; every refused row named by line; all rows or none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from bot.cli.main import app
from bot.cli.importer import read_rows
from bot.settings import BUNDLED_RULES
from bot.cli.stock_import import check_rows
from engine.rules import load_rules
from storage.stock_repo import SqlStock, StockLevel

RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
GOOD = "sku,base,quantity\nCUR-遮光-280,HZ,12\nCUR-遮光-280,FS,0\nSOFA-1,LF,3\n"
runner = CliRunner()


def _rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    return list(read_rows(path, "zh"))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_good_csv_in_every_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "stock.csv"
    path.write_bytes(GOOD.encode(encoding))
    checked = check_rows(_rows(path), RULES)
    assert checked.errors == []
    assert checked.levels == [StockLevel("CUR-遮光-280", "HZ", 12), StockLevel("CUR-遮光-280", "FS", 0),
                              StockLevel("SOFA-1", "LF", 3)]


def test_xlsx_with_chinese_headers_and_numeric_cells(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["商品编码", "基地", "库存"])
    ws.append(["CUR-A", "HZ", 7])
    ws.append(["CUR-A", "CD", 2.0])  # Excel numbers arrive as floats
    ws.append([1001, "FS", "1,500"])  # a numeric SKU, a thousands separator
    wb.save(tmp_path / "stock.xlsx")
    checked = check_rows(_rows(tmp_path / "stock.xlsx"), RULES)
    assert checked.errors == []
    assert checked.levels == [StockLevel("CUR-A", "HZ", 7), StockLevel("CUR-A", "CD", 2),
                              StockLevel("1001", "FS", 1500)]


def test_bad_rows_are_named_by_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sku,base,quantity\n"
                    "CUR-A,HZ,5\n"  # 2: good
                    "CUR-A,XX,5\n"  # 3: unknown base
                    "CUR-A,FS,-1\n"  # 4: negative
                    "CUR-A,FS,99999999999999999999999\n"  # 5: huge
                    f"CUR-A,FS,{'9' * 5000}\n"  # 6: absurdly long number
                    ",HZ,1\n"  # 7: no SKU
                    "CUR-B,HZ,1.5\n"  # 8: not whole
                    "CUR-B,HZ,NaN\n"  # 9: not a number
                    "CUR-A,HZ,6\n"  # 10: repeats row 2
                    f"{'S' * 65},HZ,1\n"  # 11: SKU too long
                    "CUR-C,FS,1e3\n",  # 12: 1000, written in Excel's way: fine
                    encoding="utf-8")
    checked = check_rows(_rows(path), RULES, "en")
    found = {(e.row, e.column) for e in checked.errors}
    assert found == {(3, "base"), (4, "quantity"), (5, "quantity"), (6, "quantity"), (7, "sku"), (8, "quantity"),
                     (9, "quantity"), (10, "sku"), (11, "sku")}
    reasons = {e.row: e.reason for e in checked.errors}
    assert "repeats row 2" in reasons[10] and "at most 1,000,000,000" in reasons[5] and "“XX”" in reasons[3]
    assert StockLevel("CUR-C", "FS", 1000) in checked.levels


def test_nul_in_a_cell_is_refused(tmp_path: Path) -> None:
    checked = check_rows([(2, {"sku": "CUR\x00A", "base": "HZ", "quantity": "1"})], RULES, "en")
    assert [(e.row, e.column) for e in checked.errors] == [(2, "sku")]
    assert "NUL" in checked.errors[0].reason


@pytest.fixture
def env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
            "ORDERHUB_DATA_DIR": str(tmp_path / "data"), "ORDERHUB_LANGUAGE": "en"}


async def test_cli_imports_all_or_nothing(env: dict[str, str], tmp_path: Path, db: AsyncEngine) -> None:
    good = tmp_path / "stock.csv"
    good.write_text(GOOD, encoding="utf-8")
    res = await asyncio.to_thread(runner.invoke, app, ["stock", "import", str(good)], env=env)
    assert res.exit_code == 0, res.output
    assert "imported 3 stock level(s)" in res.output
    assert await SqlStock(db).levels(["CUR-遮光-280", "SOFA-1"]) == {"HZ:CUR-遮光-280": 12, "FS:CUR-遮光-280": 0,
                                                                      "LF:SOFA-1": 3}

    half = tmp_path / "half.csv"  # a good change, then a bad row: nothing of it is written
    half.write_text("sku,base,quantity\nCUR-遮光-280,HZ,99\nNEW-1,HZ,1\nNEW-1,ZZ,1\n", encoding="utf-8")
    res = await asyncio.to_thread(runner.invoke, app, ["stock", "import", str(half)], env=env)
    assert res.exit_code == 1
    assert "nothing imported" in res.output and "ZZ" in res.output
    assert await SqlStock(db).count() == 3
    assert (await SqlStock(db).levels(["CUR-遮光-280"]))["HZ:CUR-遮光-280"] == 12

    nul = tmp_path / "nul.csv"  # a binary file under a .csv name: one line, exit 2
    nul.write_bytes(b"sku,base,quantity\nCUR-A,HZ,1\x00\n")
    res = await asyncio.to_thread(runner.invoke, app, ["stock", "import", str(nul)], env=env)
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output
    assert await SqlStock(db).count() == 3

    missing = tmp_path / "cols.csv"
    missing.write_text("sku,qty\nCUR-A,1\n", encoding="utf-8")
    res = await asyncio.to_thread(runner.invoke, app, ["stock", "import", str(missing)], env=env)
    assert res.exit_code == 2 and "base" in res.output

    replace = tmp_path / "replace.csv"
    replace.write_text("sku,base,quantity\nSOFA-1,LF,4\n", encoding="utf-8")
    res = await asyncio.to_thread(runner.invoke, app, ["stock", "import", str(replace), "--replace"], env=env)
    assert res.exit_code == 0, res.output
    assert await SqlStock(db).count() == 1 and await SqlStock(db).levels(["SOFA-1"]) == {"LF:SOFA-1": 4}
