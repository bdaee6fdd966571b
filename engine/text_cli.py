"""The command line's words in Chinese (default) and English: one language per installation (ORDERHUB_LANGUAGE).

Kept apart from the chat catalogue (engine/text.py) so the terminal and the chat can grow without colliding; `tc`
works like `t`.
"""

from __future__ import annotations

from typing import Any

_STRINGS: dict[str, dict[str, str]] = {
    # orderhub import: file level (one line each)
    "imp.too_big": {"zh": "文件超过 {limit} MB，请拆分后再导入：{path}",
                    "en": "The file is larger than {limit} MB; split it and import the parts: {path}"},
    "imp.not_file": {"zh": "不是普通文件：{path}", "en": "Not a regular file: {path}"},
    "imp.unreadable": {"zh": "无法读取文件 {path}：{reason}", "en": "Cannot read {path}: {reason}"},
    "imp.encoding": {"zh": "无法识别文件编码（支持 UTF-8、GBK、GB18030）：{path}；请在 Excel 中另存为“CSV UTF-8”",
                     "en": "Unrecognised text encoding (UTF-8, GBK and GB18030 are read): {path}; "
                           "in Excel use Save As “CSV UTF-8”"},
    "imp.not_xlsx": {"zh": "不是有效的 Excel（.xlsx）文件：{path}", "en": "Not a valid Excel (.xlsx) file: {path}"},
    "imp.bad_csv": {"zh": "第 {line} 行无法读取：{reason}", "en": "row {line} cannot be read: {reason}"},
    "imp.field_too_long": {"zh": "某个单元格超过 {limit} 个字符", "en": "a cell is longer than {limit} characters"},
    "imp.too_many_rows": {"zh": "文件超过 {limit} 行，请拆分后再导入：{path}",
                          "en": "The file has more than {limit} rows; split it and import the parts: {path}"},
    "imp.no_header": {"zh": "文件没有表头行：{path}", "en": "The file has no header row: {path}"},
    # orderhub import: the report
    "imp.queueing": {"zh": "正在排队 {name}", "en": "queueing {name}"},
    "imp.queued": {"zh": "已从 {path} 排队 {n} 个订单", "en": "queued {n} order(s) from {path}"},
    "imp.refused_title": {"zh": "{rows} 行未导入（{problems} 个问题）", "en": "{rows} row(s) not imported ({problems} problem(s))"},
    "imp.warn_title": {"zh": "{rows} 行已导入，但请注意", "en": "{rows} row(s) imported with a warning"},
    "imp.col_row": {"zh": "行", "en": "row"},
    "imp.col_column": {"zh": "列", "en": "column"},
    "imp.col_reason": {"zh": "原因", "en": "reason"},
    "imp.no_worker": {"zh": "⚠ 没有正在运行的 worker：订单已排队，但要等 `orderhub serve` 或 `orderhub worker` 启动后才会入库",
                      "en": "⚠ No worker is running: the orders are queued but are stored only once `orderhub serve` "
                            "or `orderhub worker` runs"},
    # reasons of a refused (or warned) row
    "r.missing": {"zh": "{field}缺失", "en": "{field} is missing"},
    "r.not_date": {"zh": "{field}不是有效的日期时间（例：2025-11-11 09:30）",
                   "en": "{field} is not a date and time (e.g. 2025-11-11 09:30)"},
    "r.not_int": {"zh": "{field}必须是整数", "en": "{field} must be a whole number"},
    "r.not_number": {"zh": "{field}必须是数字", "en": "{field} must be a number"},
    "r.ge": {"zh": "{field}不能小于 {limit}", "en": "{field} must be at least {limit}"},
    "r.le": {"zh": "{field}不能大于 {limit}", "en": "{field} must be at most {limit}"},
    "r.too_long": {"zh": "{field}不能超过 {limit} 个字符", "en": "{field} must be at most {limit} characters"},
    "r.decimals": {"zh": "{field}最多 {limit} 位小数", "en": "{field} has more than {limit} decimal places"},
    "r.digits": {"zh": "{field}位数过多", "en": "{field} has too many digits"},
    "r.pattern": {"zh": "{field}格式不正确", "en": "{field} has the wrong format"},
    "r.too_many": {"zh": "{field}过多（最多 {limit} 项）", "en": "{field}: too many (at most {limit})"},
    "r.invalid": {"zh": "{field}无效", "en": "{field} is not valid"},
    "r.unknown_column": {"zh": "未知列 {field}", "en": "unknown column {field}"},
    "r.amount_mismatch": {"zh": "金额 {amount} 与商品合计 {total} 不符",
                          "en": "amount {amount} disagrees with the items' total {total}"},
    "r.unknown_city": {"zh": "城市「{city}」不属于规则中的任何区域", "en": "city “{city}” is in no region of the rules"},
    "r.no_phone": {"zh": "没有电话：该客户无法通过手机号验证查询订单",
                   "en": "no phone: this customer cannot verify themselves to ask about the order"},
    "r.order_refused": {"zh": "同一订单 {order} 的其他行有问题", "en": "another row of order {order} has a problem"},
    # orderhub stock import
    "stk.missing_columns": {"zh": "缺少列：{columns}（需要 sku、base、quantity）：{path}",
                            "en": "missing column(s): {columns} (sku, base and quantity are needed): {path}"},
    "stk.written": {"zh": "已从 {path} 导入 {n} 条库存（{mode}）", "en": "imported {n} stock level(s) from {path} ({mode})"},
    "stk.mode_merge": {"zh": "合并：文件中没有的库存保持不变", "en": "merged: pairs not in the file are kept"},
    "stk.mode_replace": {"zh": "替换：文件中没有的库存已删除", "en": "replaced: pairs not in the file are removed"},
    "stk.nothing": {"zh": "有问题的行未修正前，不导入任何库存：{path}",
                    "en": "nothing imported until the refused rows are fixed: {path}"},
    "stk.empty": {"zh": "文件中没有库存行：{path}", "en": "the file has no stock rows: {path}"},
    "r.unknown_base": {"zh": "基地「{base}」不在规则的 bases 中（{known}）",
                       "en": "base “{base}” is not in the rules' bases ({known})"},
    "r.duplicate_pair": {"zh": "与第 {row} 行重复（同一商品编码和基地）",
                         "en": "repeats row {row} (same SKU and base)"},
    "r.bad_text": {"zh": "{field}含有不可用的字符（NUL 或无效编码）",
                   "en": "{field} contains characters no database takes (NUL or broken encoding)"},
    # orderhub queue status
    "q.title": {"zh": "接单队列", "en": "intake queue"},
    "q.depth": {"zh": "队列中", "en": "in queue"},
    "q.waiting": {"zh": "待处理", "en": "waiting"},
    "q.pending": {"zh": "处理中", "en": "in progress"},
    "q.retrying": {"zh": "重试中", "en": "retrying"},
    "q.dead": {"zh": "处理失败", "en": "failed"},
    "q.workers": {"zh": "运行中的 worker", "en": "running workers"},
    "q.consumers_title": {"zh": "worker", "en": "workers"},
    "q.c_name": {"zh": "名称", "en": "name"},
    "q.c_idle": {"zh": "上次取单", "en": "last asked"},
    "q.c_pending": {"zh": "处理中", "en": "in progress"},
    "q.c_state": {"zh": "状态", "en": "state"},
    "q.live": {"zh": "运行中", "en": "running"},
    "q.silent": {"zh": "无响应", "en": "not answering"},
    "q.ago": {"zh": "{s} 秒前", "en": "{s} s ago"},
    "q.removed": {"zh": "已移除 {n} 个已停止的 worker：{names}", "en": "removed {n} stopped worker(s): {names}"},
    "q.replayed": {"zh": "已将 {n} 个处理失败的订单放回接单队列", "en": "put {n} failed order(s) back into the intake queue"},
    "q.dead_line": {"zh": "失败 {id} 渠道 {channel} 尝试 {tries} 次：{error}",
                    "en": "failed {id} channel {channel}, {tries} tries: {error}"},
    # orderhub users
    "u.title": {"zh": "用户", "en": "users"},
    "u.id": {"zh": "编号", "en": "id"},
    "u.name": {"zh": "姓名", "en": "name"},
    "u.role": {"zh": "角色", "en": "role"},
    "u.regions": {"zh": "区域", "en": "regions"},
    "u.phone": {"zh": "电话", "en": "phone"},
    "u.chats": {"zh": "聊天账号", "en": "chat accounts"},
    "u.invite": {"zh": "{name}：请在 {days} 天内向机器人发送 [bold]/link {code}[/]；邀请码只能使用一次",
                 "en": "{name}: send [bold]/link {code}[/] to the bot within {days} day(s); the code works once"},
    "u.added": {"zh": "已添加 {name}（{role}）", "en": "added {name} ({role})"},
    "u.deactivated": {"zh": "已停用 {name}；其 {n} 个未完成订单：{repicked} 个按规则改派，{cleared} 个暂无负责人",
                      "en": "deactivated {name}; their {n} open orders: {repicked} re-picked by the rules, "
                            "{cleared} left without an owner"},
    "u.linked": {"zh": "已将 {name} 绑定到 {platform} {ident}", "en": "linked {name} to {platform} {ident}"},
    "u.quiet": {"zh": "{name} 的免打扰时段：{spec}（期间聊天提醒留到结束后送达；严重升级照常提醒，邮件抄送不受影响）",
                "en": "{name}'s quiet hours: {spec} (chat alerts are held until they end; severe escalations still "
                      "ring; e-mail copies are unaffected)"},
    "u.quiet_off": {"zh": "{name} 已关闭免打扰时段", "en": "{name} has no quiet hours any more"},
    # orderhub report
    "k.title": {"zh": "近 {days} 天指标", "en": "KPIs, last {days} days"},
    "k.kpi": {"zh": "指标", "en": "KPI"},
    "k.value": {"zh": "数值", "en": "value"},
    "k.from": {"zh": "依据", "en": "from"},
    "k.accuracy": {"zh": "订单准确率", "en": "order accuracy"},
    "k.cycle": {"zh": "平均履约周期", "en": "average fulfilment cycle"},
    "k.manual": {"zh": "人工干预率", "en": "manual intervention rate"},
    "k.availability": {"zh": "可用性", "en": "availability"},
    "k.days": {"zh": "{n:.1f} 天", "en": "{n:.1f} days"},
    "k.completed": {"zh": "{clean}/{n} 个已完成订单", "en": "{clean}/{n} completed orders"},
    "k.completed_n": {"zh": "{n} 个已完成订单", "en": "{n} completed orders"},
    "k.orders": {"zh": "{manual}/{n} 个订单", "en": "{manual}/{n} orders"},
    "k.minutes": {"zh": "{up}/{n} 分钟", "en": "{up}/{n} minutes"},
    "k.refund_time": {"zh": "退款处理时长", "en": "refund handling time"},
    "k.refund_minutes": {"zh": "中位 {p50} / p90 {p90} 分钟", "en": "p50 {p50} / p90 {p90} min"},
    "k.refunds_decided": {"zh": "{n}/{total} 笔退款已决定", "en": "{n}/{total} refunds decided"},
    "k.refund_auto": {"zh": "自动决定的退款", "en": "refunds decided automatically"},
    "k.decided": {"zh": "{n} 笔已决定", "en": "{n} decided"},
    "k.queue": {"zh": "队列：{depth} 个待入库，{retrying} 个重试中，{dead} 个处理失败",
                "en": "queue: {depth} not yet stored, {retrying} retrying, {dead} failed"},
    # orderhub db upgrade
    "db.upgraded": {"zh": "数据库已升级到 {rev}（{applied}）", "en": "upgraded to {rev} ({applied})"},
    "db.already": {"zh": "数据库已是最新版本 {rev}", "en": "already at {rev}"},
    # orderhub demo
    "d.where": {"zh": "演示数据保存在 {dir}（独立的数据库和队列，不会改动 ./orderhub.db）",
                "en": "demo data lives in {dir} (its own database and queue; ./orderhub.db is not touched)"},
    "d.rule": {"zh": "OrderHub 演示：{n} 个订单经由 {url}", "en": "OrderHub demo: {n} orders through {url}"},
    "d.table": {"zh": "今日接单", "en": "the day's intake"},
    "d.what": {"zh": "项目", "en": "what"},
    "d.count": {"zh": "数量", "en": "count"},
    "d.sent": {"zh": "发送订单", "en": "orders sent"},
    "d.deliveries": {"zh": "推送次数（请求）", "en": "deliveries (requests)"},
    "d.repeats": {"zh": "其中重复推送", "en": "of which repeats"},
    "d.answered": {"zh": "返回 202", "en": "answered 202"},
    "d.stored": {"zh": "已入库订单", "en": "orders stored"},
    "d.stage": {"zh": "  阶段 {stage}", "en": "  stage {stage}"},
    "d.region": {"zh": "  区域 {region}", "en": "  region {region}"},
    "d.no_region": {"zh": "（无）", "en": "(none)"},
    "d.approvals": {"zh": "待审批", "en": "approvals waiting"},
    "d.seconds": {"zh": "秒（推送 / 入库）", "en": "seconds (post / stored)"},
    "d.chart": {"zh": "早报图表已写入 {path}", "en": "digest chart written to {path}"},
    "d.ok": {"zh": "每个订单都恰好入库一次", "en": "every order stored exactly once"},
    "d.missing": {"zh": "有订单缺失", "en": "some orders are missing"},
    "d.c_requests": {"zh": "聊天：审批请求", "en": "chat: approval requests"},
    "d.c_cards": {"zh": "审批卡片", "en": "approval cards"},
    "d.c_few": {"zh": "今天的审批少于两个；加大 --orders 可看到审批流程",
                "en": "fewer than two approvals today; run with more --orders to see the approval flow"},
    "d.c_wrong_right": {"zh": "聊天：{order}（{region}）— 先按错人，再由对的人按", "en": "chat: {order} ({region}) — a wrong press, then the right one"},
    "d.c_reject": {"zh": "聊天：{order} 被驳回并说明原因", "en": "chat: {order} rejected with a reason"},
    "d.c_reason": {"zh": "客户改单，重新下单", "en": "The customer changed the order; it will be placed again"},
    "d.c_stall": {"zh": "聊天：超时提醒", "en": "chat: a stall alert"},
    "d.c_refund": {"zh": "聊天：顾客在订单状态下点「申请退款」，选原因；金额超过 2,000，财务批准",
                   "en": "chat: the customer presses “Request a refund” under the status, picks a reason; over 2,000, "
                         "finance approves"},
    "d.c_customer": {"zh": "聊天：顾客查询订单进度", "en": "chat: a customer asks where the order is"},
    "d.pressed": {"zh": "按下「{button}」", "en": "pressed “{button}”"},
    "d.customer": {"zh": "顾客", "en": "Customer"},
    "d.shared_other": {"zh": "（分享了别人的名片）", "en": "(shares someone else's contact)"},
    "d.shared_own": {"zh": "（分享了自己的手机号）", "en": "(shares their own phone number)"},
    "d.where_is": {"zh": "{order} 到哪了", "en": "where is {order}"},
    "d.chat_ok": {"zh": "聊天流程符合预期", "en": "chat flow behaved as expected"},
    "d.chat_bad": {"zh": "聊天流程异常", "en": "chat flow misbehaved"},
    "d.reply_requested": {"zh": " ↩（请求回复）", "en": " ↩ (reply requested)"},
    "d.contact_button": {"zh": " 📱（分享手机号按钮）", "en": " 📱 (share-contact button)"},
    "d.edited": {"zh": "已编辑", "en": "edited"},
    "d.hidden": {"zh": "……另有 {n} 条{what}已发送（未显示）", "en": "… and {n} more {what} sent (not shown)"},
}

# What a person calls each import column (the reason names the field; the table names the column as in the file).
FIELD_NAMES: dict[str, dict[str, str]] = {
    "external_id": {"zh": "订单号", "en": "order number"},
    "created_at": {"zh": "下单时间", "en": "order time"},
    "channel": {"zh": "渠道", "en": "channel"},
    "customer_id": {"zh": "客户编号", "en": "customer id"},
    "customer_name": {"zh": "客户姓名", "en": "customer name"},
    "phone": {"zh": "电话", "en": "phone"},
    "city": {"zh": "城市", "en": "city"},
    "tier": {"zh": "客户等级", "en": "customer tier"},
    "sku": {"zh": "商品编码", "en": "SKU"},
    "item_name": {"zh": "商品名称", "en": "item name"},
    "qty": {"zh": "数量", "en": "quantity"},
    "unit_price": {"zh": "单价", "en": "unit price"},
    "amount": {"zh": "金额", "en": "amount"},
    "currency": {"zh": "币种", "en": "currency"},
    "notes": {"zh": "备注", "en": "remark"},
    "items": {"zh": "商品", "en": "items"},
    "base": {"zh": "基地", "en": "base"},
    "quantity": {"zh": "库存数量", "en": "quantity"},
}


def tc(key: str, language: str = "zh", **kw: object) -> str:
    """The command-line string `key` in `language` (Chinese when unknown), formatted with `kw`."""
    entry = _STRINGS[key]
    return entry.get(language, entry["zh"]).format(**kw)


def field_name(column: str, language: str = "zh") -> str:
    names = FIELD_NAMES.get(column)
    if names:
        return names.get(language, names["zh"])
    return column.split(":", 1)[-1]


_PYDANTIC_REASONS = {
    "missing": "r.missing", "string_too_short": "r.missing", "too_short": "r.missing",
    "datetime_parsing": "r.not_date", "datetime_from_date_parsing": "r.not_date", "timezone_aware": "r.not_date",
    "datetime_type": "r.not_date",
    "int_parsing": "r.not_int", "int_from_float": "r.not_int", "int_type": "r.not_int",
    "decimal_parsing": "r.not_number", "decimal_type": "r.not_number", "float_parsing": "r.not_number",
    "greater_than_equal": "r.ge", "greater_than": "r.ge",
    "less_than_equal": "r.le", "less_than": "r.le",
    "string_too_long": "r.too_long", "too_long": "r.too_many",
    "decimal_max_places": "r.decimals", "decimal_max_digits": "r.digits", "decimal_whole_digits": "r.digits",
    "string_pattern_mismatch": "r.pattern",
    "extra_forbidden": "r.unknown_column",
}


def pydantic_reason(err: dict[str, Any], column: str, language: str = "zh") -> str:
    """A pydantic error as a sentence about the column a person fills in, in their language."""
    key = _PYDANTIC_REASONS.get(str(err.get("type")), "r.invalid")
    ctx = err.get("ctx") or {}
    limit = next((ctx[k] for k in ("ge", "gt", "le", "lt", "max_length", "decimal_places", "max_digits", "whole_digits")
                  if k in ctx), "")
    return tc(key, language, field=field_name(column, language), limit=limit)
