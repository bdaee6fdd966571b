"""`orderhub import`: rows become orders through the queue; bad rows are reported by row and column."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from openpyxl import Workbook

from bot.cli.importer import group_orders, read_rows, validate

HEADER = ["external_id", "created_at", "customer_id", "customer_name", "phone", "city", "sku", "item_name", "qty",
          "unit_price", "amount", "attr:width_cm", "custom:install_date", "notes"]
ROWS = [
    ["X1", "2025-11-11 09:30:00", "C1", "王女士", "13800138000", "杭州", "CUR-1", "窗帘", "2", "1890.00", "4280.00",
     "280", "2025-11-20", ""],
    ["X1", "", "", "", "", "", "ROD-1", "窗帘杆", "1", "500.00", "", "", "", ""],  # second line of order X1
    ["X2", "2025-11-11 10:00:00", "C2", "李先生", "13900139000", "广州", "CUR-2", "纱帘", "zero", "300.00", "300.00",
     "", "", ""],
    ["X3", "not a date", "C3", "张女士", "13700137000", "北京", "CUR-3", "卷帘", "1", "99.00", "99.00", "", "", ""],
    ["", "2025-11-11 10:00:00", "C4", "", "", "", "", "", "", "", "", "", "", ""],
]


def write_csv(path: Path) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(ROWS)
    return path


def write_xlsx(path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in ROWS:
        ws.append(row)
    wb.save(path)
    return path


@pytest.mark.parametrize("writer", [write_csv, write_xlsx], ids=["csv", "xlsx"])
def test_rows_group_into_orders_and_errors_name_row_and_column(tmp_path: Path, writer) -> None:
    path = writer(tmp_path / f"orders.{'csv' if writer is write_csv else 'xlsx'}")
    orders, errors = group_orders(read_rows(path), "import", ZoneInfo("Asia/Shanghai"))
    bodies, invalid = validate(orders)
    errors += invalid
    assert len(bodies) == 1
    x1 = orjson.loads(bodies[0])
    assert x1["external_id"] == "X1" and x1["channel"] == "import"
    assert [i["sku"] for i in x1["items"]] == ["CUR-1", "ROD-1"]
    assert x1["items"][0]["attributes"] == {"width_cm": "280"} or x1["items"][0]["attributes"] == {"width_cm": 280}
    assert x1["custom_fields"]["install_date"] in ("2025-11-20",) or str(x1["custom_fields"]["install_date"]).startswith("2025-11-20")
    assert x1["created_at"] == "2025-11-11T09:30:00+08:00"
    found = {(e.row, e.column) for e in errors}
    assert found == {(4, "qty"), (5, "created_at"), (6, "external_id")}


# --- encodings, bounds and one-line errors (issue 11, issue 9.11) --------------------------------------------------

from typer.testing import CliRunner  # noqa: E402

from bot.cli.main import app  # noqa: E402
from bot.settings import BUNDLED_RULES  # noqa: E402
from engine.rules import load_rules  # noqa: E402

RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
GOOD = "external_id,created_at,customer_id,customer_name,phone,city,sku,item_name,qty,unit_price,amount\n" \
       "G1,2025-11-11 09:30:00,C1,欧阳娜娜,13800138000,杭州,CUR-1,遮光窗帘,2,380.00,760.00\n"


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8"])
def test_excel_and_wps_encodings_keep_chinese_names(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "orders.csv"
    text = GOOD + "G2,2025-11-11 10:00:00,C2,䶮先生,13900139000,广州,CUR-2,纱帘,1,300.00,300.00\n"
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:  # 䶮 is outside GBK: the GBK file has the first order only
        path.write_bytes(GOOD.encode(encoding))
    orders, errors = group_orders(read_rows(path), "import", ZoneInfo("Asia/Shanghai"))
    bodies, invalid = validate(orders, RULES)
    assert errors == [] and invalid == []
    names = [orjson.loads(b)["customer"]["name"] for b in bodies]
    assert names[0] == "欧阳娜娜" and names[1:] in ([], ["䶮先生"])
    assert orjson.loads(bodies[0])["items"][0]["name"] == "遮光窗帘"


runner = CliRunner()


@pytest.fixture
def env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
            "ORDERHUB_DATA_DIR": str(tmp_path / "data"), "ORDERHUB_LANGUAGE": "zh"}


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    long_field = tmp_path / "long.csv"
    long_field.write_text(GOOD + "G3,2025-11-11 09:30:00,C3," + "王" * 131_073 + ",1,杭州,S,n,1,1,1\n", encoding="utf-8")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(GOOD.encode("utf-16"))
    latin = tmp_path / "binary.csv"
    latin.write_bytes(bytes(range(256)) * 40)
    fake = tmp_path / "fake.xlsx"
    fake.write_text(GOOD, encoding="utf-8")
    broken_zip = tmp_path / "broken.xlsx"
    broken_zip.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    nul = tmp_path / "zeros.csv"
    nul.write_bytes(b"\0" * 10_000)
    return {"long": long_field, "utf16": utf16, "binary": latin, "fake_xlsx": fake, "broken_zip": broken_zip,
            "zeros": nul, "dev_zero": Path("/dev/zero")}


def test_unreadable_files_are_one_line_and_exit_code_2(env: dict[str, str], tmp_path: Path) -> None:
    for name, path in _bad_files(tmp_path).items():
        result = runner.invoke(app, ["import", str(path)], env=env)
        assert result.exit_code == 2, (name, result.output)
        assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (name, result.output)
    too_long = runner.invoke(app, ["import", str(tmp_path / "long.csv")], env=env).output
    assert "131,072" in too_long and "第 3 行" in too_long


def test_big_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import importer

    monkeypatch.setattr(importer, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.csv"
    path.write_text(GOOD * 50, encoding="utf-8")
    with pytest.raises(importer.ImportFileError, match="1000|MB"):
        list(read_rows(path))


WRONG = GOOD + (
    "W1,2025-11-11 09:30:00,C5,赵女士,13700137000,杭州,CUR-1,窗帘,2,380.00,9999.00\n"  # amount ≠ 2 × 380
    "W2,2025-11-11 09:30:00,C6,钱先生,13600136000,火星,CUR-1,窗帘,1,380.00,380.00\n"  # no region has this city
    "W3,2025-11-11 09:30:00,C7,孙女士,,上海,CUR-1,窗帘,1,380.00,380.00\n"  # no phone: accepted with a warning
    "W4,2025-11-11 09:30:00,C8,李先生,13500135000,杭州,CUR-1,窗帘,0,380.00,0\n"  # qty 0
    "W4,,,,,,ROD-1,窗帘杆,x,50.00,\n"  # second line of W4, qty not a number
)


def test_wrong_rows_are_refused_with_row_column_and_reason(tmp_path: Path) -> None:
    from bot.cli.importer import check

    path = tmp_path / "w.csv"
    path.write_text(WRONG, encoding="utf-8")
    orders, errors = group_orders(read_rows(path), "import", ZoneInfo("Asia/Shanghai"))
    checked = check(orders, RULES, "zh")
    stored = {orjson.loads(b)["external_id"] for b in checked.bodies}
    assert stored == {"G1", "W3"}
    found = {(e.row, e.column): e.reason for e in errors + checked.errors}
    assert found[(3, "amount")] == "金额 9999.00 与商品合计 760.00 不符"
    assert found[(4, "city")] == "城市「火星」不属于规则中的任何区域"
    assert found[(6, "qty")] == "数量不能小于 1"
    assert found[(7, "qty")] == "数量必须是整数"
    assert checked.refused_rows == {3, 4, 6, 7}
    assert [(w.row, w.column) for w in checked.warnings] == [(5, "phone")]
    english = check(group_orders(read_rows(path), "import", ZoneInfo("Asia/Shanghai"), "en")[0], RULES, "en")
    assert {e.reason for e in english.errors} >= {"quantity must be at least 1", "quantity must be a whole number"}


def test_report_counts_refused_rows_and_warns_without_a_worker(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text(WRONG, encoding="utf-8")
    result = runner.invoke(app, ["import", str(path)], env=env)
    assert result.exit_code == 1, result.output
    assert "4 行未导入（4 个问题）" in result.output
    assert "1 行已导入，但请注意" in result.output
    assert "没有正在运行的 worker" in result.output
    assert "Input should" not in result.output
