"""`orderhub import`: rows become orders through the queue; bad rows are reported by row and column."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from openpyxl import Workbook

from bot.importer import group_orders, read_rows, validate

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
