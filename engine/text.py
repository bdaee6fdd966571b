"""Every chat string in Chinese (default) and English, plus the small formatting rules chats share.

Telegram caps a message at 4,096 characters; HTML markup and escaping added by an adapter must fit as well, so
content is budgeted to `TEXT_BUDGET` and long content is paged (`paginate`), never cut off silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from engine.stages import BOARD, Stage, label

MAX_MESSAGE_CHARS = 4096
TEXT_BUDGET = 3500  # what a handler may put in one message; leaves room for markup and escaping

_STRINGS: dict[str, dict[str, str]] = {
    # approvals
    "approval.title": {"zh": "审批请求 · 订单 {order}", "en": "Approval request · order {order}"},
    "approval.pending": {"zh": "⏳ 待审批（第 {level} 级 · {role}{region}）", "en": "⏳ Waiting for approval (level {level} · {role}{region})"},
    "approval.escalated": {"zh": "⏫ 已升级（超时未处理）", "en": "⏫ Escalated (unanswered)"},
    "approval.approved": {"zh": "✅ 已批准 · {who} · {when}", "en": "✅ Approved · {who} · {when}"},
    "approval.rejected": {"zh": "❌ 已驳回 · {who} · {when} · 原因：{reason}", "en": "❌ Rejected · {who} · {when} · reason: {reason}"},
    "approval.superseded": {"zh": "⚪ 已失效：订单已变更，已发出新的审批", "en": "⚪ Void: the order changed, a new request was sent"},
    "approval.void_cancelled": {"zh": "⚪ 已失效：订单已取消 · {when}", "en": "⚪ Void: the order was cancelled · {when}"},
    "approval.void_decided": {"zh": "⚪ 已失效：订单已由另一项审批决定 · {when}",
                              "en": "⚪ Void: another approval of this order decided it · {when}"},
    "approval.ask_reason": {"zh": "请回复驳回订单 {order} 的原因：", "en": "Please reply with the reason to reject order {order}:"},
    "approval.reason_recorded": {"zh": "已驳回订单 {order}，原因已记录。", "en": "Order {order} rejected; reason recorded."},
    "btn.approve": {"zh": "批准", "en": "Approve"},
    "btn.reject": {"zh": "驳回", "en": "Reject"},
    "btn.details": {"zh": "详情", "en": "Details"},
    "toast.not_permitted": {"zh": "无权审批此订单", "en": "You may not decide this approval"},
    "toast.own_request": {"zh": "不能审批自己提交的申请", "en": "You cannot approve your own request"},
    "toast.already_decided": {"zh": "此审批已处理", "en": "This approval was already decided"},
    "toast.superseded": {"zh": "订单已变更，此审批已失效", "en": "The order changed; this request is void"},
    "toast.reason_required": {"zh": "驳回需要填写原因", "en": "A rejection needs a reason"},
    "toast.level_pending": {"zh": "上一级审批尚未通过，请稍后", "en": "An earlier level of this approval is not approved yet"},
    "toast.approved": {"zh": "已批准", "en": "Approved"},
    "toast.ask_reason": {"zh": "请回复驳回原因", "en": "Please reply with the reason"},
    "toast.forged": {"zh": "无效的按钮（签名不符）", "en": "Invalid button (bad signature)"},
    "toast.malformed": {"zh": "无效的按钮", "en": "Invalid button"},
    "toast.stale": {"zh": "按钮已过期，请查看最新消息", "en": "This button is out of date"},
    "toast.not_linked": {"zh": "尚未绑定账号，请发送 /link 邀请码", "en": "Not linked yet: send /link CODE"},
    "toast.not_found": {"zh": "找不到该记录", "en": "Not found"},
    "toast.acked": {"zh": "已确认，此阶段不再升级", "en": "Acknowledged; no further escalation for this stage"},
    "toast.snoozed": {"zh": "已暂停提醒 4 小时", "en": "Snoozed for 4 hours"},
    "toast.advanced": {"zh": "已推进到「{stage}」", "en": "Moved to “{stage}”"},
    "move.awaiting_approval": {"zh": "无法推进：订单正在等待审批，只能由审批决定", "en": "Cannot advance: the order is waiting for approval; only the approval decides it"},
    "move.reason_required": {"zh": "取消订单需要填写原因", "en": "Cancelling an order needs a reason"},
    "move.changed": {"zh": "订单刚刚被改动，请刷新后重试", "en": "The order changed meanwhile; look again and retry"},
    "toast.advance_failed": {"zh": "无法推进：订单已不在「{stage}」", "en": "Cannot advance: the order is no longer in “{stage}”"},
    "toast.no_permission": {"zh": "无权操作此订单", "en": "You may not act on this order"},
    # stall alerts
    "stall.title": {"zh": "⏰ 订单超时 · {order}", "en": "⏰ Order overdue · {order}"},
    "stall.overdue": {"zh": "超时", "en": "Overdue by"},
    "stall.deadline": {"zh": "截止", "en": "Deadline"},
    "stall.level": {"zh": "升级级别", "en": "Escalation level"},
    "stall.first_alert": {"zh": "首次提醒（{who}）", "en": "first alert ({who})"},
    "stall.escalated_to": {"zh": "已升级到{who}", "en": "escalated to {who}"},
    "stall.status_open": {"zh": "请处理或确认", "en": "Please act or acknowledge"},
    "stall.status_acked": {"zh": "👀 {who} 已确认 · {when}", "en": "👀 Acknowledged by {who} · {when}"},
    "stall.status_snoozed": {"zh": "💤 {who} 暂停提醒至 {until}", "en": "💤 Snoozed by {who} until {until}"},
    "stall.status_advanced": {"zh": "➡️ {who} 已推进到「{stage}」· {when}", "en": "➡️ {who} moved it to “{stage}” · {when}"},
    "stall.warn_title": {"zh": "⚠️ 即将超时 · {order}", "en": "⚠️ Due soon · {order}"},
    "stall.left": {"zh": "剩余", "en": "Time left"},
    "stall.warning": {"zh": "超时前提醒（{who}）", "en": "warning before the deadline ({who})"},
    # grouped stall cards
    "group.title": {"zh": "⏰ {stage}超时 {n} 单 · {where} · 最久 {oldest}",
                    "en": "⏰ {n} overdue in {stage} · {where} · oldest {oldest}"},
    "group.title_warn": {"zh": "⚠️ {stage}即将超时 {n} 单 · {where}", "en": "⚠️ {n} due soon in {stage} · {where}"},
    "group.base": {"zh": "基地 {base}", "en": "base {base}"},
    "group.region": {"zh": "区域 {region}", "en": "region {region}"},
    "group.anywhere": {"zh": "全部", "en": "all"},
    "group.row_overdue": {"zh": "{order} · 超时 {d}", "en": "{order} · overdue {d}"},
    "group.row_left": {"zh": "{order} · 剩余 {d}", "en": "{order} · {d} left"},
    "group.page": {"zh": "第 {page}/{pages} 页（共 {n} 单）", "en": "page {page}/{pages} ({n} orders)"},
    "group.status_open": {"zh": "逐单点「详情」，或一键全部确认 / 暂停", "en": "Details per order, or acknowledge / snooze all"},
    "group.status_acked": {"zh": "👀 {who} 已确认 {n} 单 · {when}", "en": "👀 {who} acknowledged {n} · {when}"},
    "group.status_snoozed": {"zh": "💤 {who} 暂停 {n} 单至 {until}", "en": "💤 {who} snoozed {n} until {until}"},
    "btn.ack_all": {"zh": "全部确认", "en": "Ack all"},
    "btn.snooze_all": {"zh": "全部暂停", "en": "Snooze all"},
    "btn.details_n": {"zh": "详情 {n}", "en": "Details {n}"},
    "toast.group_acked": {"zh": "已确认 {n} 单，这些订单此阶段不再升级", "en": "Acknowledged {n}; no further escalation"},
    "toast.group_snoozed": {"zh": "已暂停 {n} 单 4 小时", "en": "Snoozed {n} for 4 hours"},
    "mail.breach_subject": {"zh": "【OrderHub】订单超时抄送 {order} · {stage} · 超时 {overdue}",
                            "en": "[OrderHub] Overdue order (copy) {order} · {stage} · overdue by {overdue}"},
    "mail.breach_batch_subject": {"zh": "【OrderHub】订单超时抄送 {n} 单 · 最久超时 {overdue}",
                                  "en": "[OrderHub] Overdue orders (copy): {n} · longest overdue by {overdue}"},
    "mail.breach_batch_intro": {"zh": "您下属负责的 {n} 个订单已超时，已在聊天中提醒负责人。此邮件为抄送。",
                                "en": "{n} orders your reports own are overdue; their owners were told in chat. "
                                      "This is your copy."},
    "mail.breach_intro": {"zh": "您下属负责的订单已超时，已在聊天中提醒负责人。此邮件为抄送。",
                          "en": "An order your report owns is overdue; its owner was told in chat. This is your copy."},
    "btn.ack": {"zh": "确认", "en": "Acknowledge"},
    "btn.snooze": {"zh": "暂停 4 小时", "en": "Snooze 4 h"},
    "btn.advance": {"zh": "推进阶段", "en": "Advance stage"},
    "btn.more": {"zh": "下一页", "en": "Next page"},
    # order fields
    "f.customer": {"zh": "客户", "en": "Customer"},
    "f.order": {"zh": "订单", "en": "Order"},
    "f.owner": {"zh": "负责人", "en": "Owner"},
    "f.base": {"zh": "生产基地", "en": "Production base"},
    "f.city": {"zh": "城市", "en": "City"},
    "f.amount": {"zh": "金额", "en": "Amount"},
    "f.items": {"zh": "商品", "en": "Items"},
    "f.custom": {"zh": "自定义字段", "en": "Custom fields"},
    "f.priority": {"zh": "优先级", "en": "Priority"},
    "f.stage": {"zh": "阶段", "en": "Stage"},
    "f.created": {"zh": "下单时间", "en": "Ordered at"},
    "f.deadline": {"zh": "阶段截止", "en": "Stage deadline"},
    "f.eta": {"zh": "预计完成", "en": "ETA"},
    "f.stage_eta": {"zh": "本阶段预计完成", "en": "This stage expected by"},
    "f.tracking": {"zh": "物流", "en": "Tracking"},
    "f.notes": {"zh": "备注", "en": "Notes"},
    "f.progress": {"zh": "进度", "en": "Progress"},
    "items.more": {"zh": "……另有 {n} 项（点“详情”查看全部）", "en": "… {n} more (press Details for all)"},
    "items.more_plain": {"zh": "……另有 {n} 项", "en": "… and {n} more"},
    "page.header": {"zh": "（第 {i}/{n} 页）", "en": "(page {i}/{n})"},
    # customers
    "cust.welcome": {
        "zh": "您好！请点击下方“分享手机号”按钮验证身份，或发送“订单号 手机后四位”（例如 TM20251111-000123 8000）查询订单。",
        "en": "Hello! Press “Share phone number” below to verify, or send “order number + last 4 phone digits” (e.g. TM20251111-000123 8000).",
    },
    "cust.contact_not_own": {"zh": "只接受您本人的联系方式，请点击“分享手机号”按钮。", "en": "Only your own contact is accepted; press “Share phone number”."},
    "cust.verified": {"zh": "验证成功，找到 {n} 个订单。", "en": "Verified: {n} order(s) found."},
    "cust.no_orders": {"zh": "暂未找到您的订单。", "en": "No orders found for you yet."},
    "cust.verify_failed": {"zh": "订单号或手机后四位不正确，还可尝试 {left} 次。", "en": "Order number or last 4 digits do not match; {left} tries left."},
    "cust.locked": {"zh": "尝试次数过多，请 {minutes} 分钟后再试。", "en": "Too many tries; please try again in {minutes} minutes."},
    "cust.need_verify": {"zh": "请先验证身份：发送 /start 并分享手机号，或发送“订单号 手机后四位”。", "en": "Please verify first: /start and share your phone, or send “order number + last 4 digits”."},
    "cust.not_found": {"zh": "在您的订单中没有找到“{q}”。您的订单：{list}", "en": "“{q}” is not among your orders. Your orders: {list}"},
    # staff
    "staff.help": {
        "zh": "/order 订单号 — 订单详情\n/stalled [城市|阶段] — 超时订单\n/pending — 等我审批的订单\n/top — 优先级最高的重点订单\n/note 订单号 内容 — 异常备注（或直接回复提醒卡片）\n/assign 订单号 用户名 — 改派订单负责人（管理员、区域经理）\n/find 文本 — 搜索订单\n/link 邀请码 — 绑定账号\n/board — 订单看板登录链接\n/help — 帮助",
        "en": "/order ID — order details\n/stalled [city|stage] — overdue orders\n/pending — approvals waiting for me\n/top — the flagged top of open orders\n/note ID TEXT — exception note (or reply to an alert card)\n/assign ID NAME — reassign an order's owner (admins, region managers)\n/find TEXT — search orders\n/link CODE — link your account\n/board — sign-in link for the order board\n/help — this help",
    },
    "staff.only": {"zh": "此命令仅限已绑定的员工使用。", "en": "This command is for linked staff only."},
    "staff.order_not_found": {"zh": "找不到订单 {q}", "en": "Order {q} not found"},
    "staff.usage_order": {"zh": "用法：/order 订单号", "en": "Usage: /order ID"},
    "staff.usage_find": {"zh": "用法：/find 文本", "en": "Usage: /find TEXT"},
    "staff.no_stalled": {"zh": "没有超时订单。", "en": "No overdue orders."},
    "staff.stalled_head": {"zh": "超时订单 {n} 个：", "en": "{n} overdue orders:"},
    "staff.no_pending": {"zh": "没有等待您审批的订单。", "en": "No approvals waiting for you."},
    "staff.no_top": {"zh": "没有重点订单。", "en": "No flagged orders."},
    "staff.top_head": {"zh": "🔴 重点订单 {n} 个（按优先级）：", "en": "🔴 {n} flagged orders, highest priority first:"},
    "priority.rank": {"zh": "{p} · 前 {pct} %", "en": "{p} · top {pct} %"},
    "priority.short": {"zh": "优先级 {p}", "en": "priority {p}"},
    "staff.pending_head": {"zh": "等待您审批 {n} 个：", "en": "{n} approvals waiting for you:"},
    "staff.find_none": {"zh": "没有匹配“{q}”的订单。", "en": "No orders match “{q}”."},
    "staff.find_head": {"zh": "匹配“{q}”的订单 {n} 个：", "en": "{n} orders match “{q}”:"},
    "link.ok": {"zh": "绑定成功：{name}（{role}）", "en": "Linked: {name} ({role})"},
    "link.bad": {"zh": "邀请码无效、已过期或已使用。", "en": "The code is invalid, expired or already used."},
    "link.usage": {"zh": "用法：/link 邀请码", "en": "Usage: /link CODE"},
    "board.link": {"zh": "订单看板登录链接（10 分钟内有效，仅可使用一次，请勿转发）：\n{url}",
                   "en": "Your sign-in link for the order board (valid 10 minutes, works once; do not forward it):\n{url}"},
    "board.unavailable": {"zh": "订单看板暂未开放。", "en": "The order board is not available."},
    "unknown_command": {"zh": "不认识的命令，发送 /help 查看帮助。", "en": "Unknown command; send /help."},
    # a platform without contact sharing (WeCom): the customer proves an order by its number and 4 digits
    "cust.verify_by_order": {
        "zh": "请发送“订单号 手机后四位”（例如 TM20251111-000123 8000）查询订单（此聊天应用不支持分享手机号）。",
        "en": "Please send “order number + last 4 phone digits” (e.g. TM20251111-000123 8000); this chat app cannot share phone numbers.",
    },
    # WeCom (cards capped by the template-card limits)
    "wecom.see_above": {"zh": "完整内容见上一条消息", "en": "Full details in the message above"},
    # admin notices
    "admin.holidays_run_out": {
        "zh": "📅 工作日历「{calendar}」的节假日只到 {year} 年（{source}）：之后的截止时间将不计法定节假日和调休。"
              "请升级 chinesecalendar（pip install -U chinesecalendar），或在规则文件 calendars.{calendar}.holidays 中补充 {next} 年的安排。",
        "en": "📅 The holidays of calendar '{calendar}' end with {year} ({source}): deadlines after that ignore public "
              "holidays and make-up workdays. Upgrade chinesecalendar (pip install -U chinesecalendar) or add {next}'s "
              "dates to calendars.{calendar}.holidays in the rules file.",
    },
    "admin.library_categories_missing": {
        "zh": "🏷️ 规则文件的 anomalies.categories 缺少内置分类库的分类：{ids}。这些类别的异常备注会被归入其他类别或未分类；"
              "如非有意，请按 engine/rules.example.yaml 补上（id 与分类库一致）。",
        "en": "🏷️ The rules file's anomalies.categories lacks categories of the bundled library: {ids}. Exception "
              "notes of these kinds are filed under another category or none; unless that is intended, add them "
              "as in engine/rules.example.yaml (the library's ids).",
    },
    "admin.verify_burst": {"zh": "⚠️ 客户验证尝试异常：{scope} 一小时内失败 {n} 次，已暂停该方式的验证。",
                           "en": "⚠️ Customer verification burst: {n} failed tries in an hour on {scope}; "
                                 "verification that way is paused."},
    "admin.verify_all": {"zh": "全部订单", "en": "all orders"},
    "admin.send_failed": {"zh": "⚠️ 消息无法送达 {chat}（{kind}）：{error}", "en": "⚠️ Could not deliver to {chat} ({kind}): {error}"},
    "admin.every_recipient": {"zh": "任何收件人", "en": "any recipient"},
    "admin.recipient": {"zh": "{name}（{platform}）", "en": "{name} ({platform})"},
    "admin.no_recipient": {"zh": "没有在聊天中绑定账号的{who}", "en": "nobody linked in chat as {who}"},
    "admin.rules_invalid": {"zh": "⚠️ 规则文件 {path} 有错误，系统仍按上一个有效版本运行。\n{error}",
                            "en": "⚠️ The rules file {path} has errors; the last good version keeps running.\n{error}"},
    "admin.dead_letter": {"zh": "⚠️ 一个来自{channel}的订单尝试 {attempts} 次仍无法入库，已暂停处理（编号 {entry_id}）：{error}\n"
                                "修复原因后执行 orderhub queue replay-dead 重新处理。",
                          "en": "⚠️ An order from {channel} could not be stored after {attempts} tries and is set aside "
                                "(number {entry_id}): {error}\nFix the cause, then run orderhub queue replay-dead."},
    # stall escalations by e-mail (the supervisor's copy of the chat card)
    "mail.stall_act": {"zh": "请在 Telegram 或企业微信中打开这条提醒，用卡片上的按钮处理（确认 / 暂停 4 小时 / 推进阶段）。",
                       "en": "Open this alert in Telegram or WeCom and use its buttons (Acknowledge / Snooze 4 h / Advance stage)."},
    # anomaly trends and the morning digest
    "trend.title": {"zh": "📈 异常趋势 · {category}", "en": "📈 Anomaly trend · {category}"},
    "trend.run": {"zh": "连续 {n} 条", "en": "{n} in a row"},
    "trend.window": {"zh": "{window}内 {n} 条", "en": "{n} within {window}"},
    "trend.scope_base": {"zh": "基地 {group}", "en": "base {group}"},
    "trend.scope_carrier": {"zh": "承运商 {group}", "en": "carrier {group}"},
    "trend.f.what": {"zh": "情况", "en": "What"},
    "trend.f.orders": {"zh": "涉及订单", "en": "Orders"},
    "trend.status": {"zh": "规则 {rule} · 请排查原因", "en": "Rule {rule} · please look into the cause"},
    "digest.title": {"zh": "☀️ 早报 · {date}{scope}", "en": "☀️ Morning digest · {date}{scope}"},
    "digest.scope": {"zh": "（{regions}）", "en": " ({regions})"},
    "digest.kpis": {"zh": "📊 关键指标（近 {days} 天）", "en": "📊 KPIs (last {days} days)"},
    "digest.accuracy": {"zh": "订单准确率：{v}", "en": "Order accuracy: {v}"},
    "digest.cycle": {"zh": "平均履约周期：{v}", "en": "Average fulfilment cycle: {v}"},
    "digest.cycle_days": {"zh": "{d} 天", "en": "{d} days"},
    "digest.manual": {"zh": "人工干预率：{v}", "en": "Manual intervention rate: {v}"},
    "digest.availability": {"zh": "系统可用率：{v}", "en": "Availability: {v}"},
    "digest.intake": {"zh": "📥 昨日新增订单：{n}", "en": "📥 Orders received yesterday: {n}"},
    "digest.stalled": {"zh": "⏰ 当前超时订单：{n}", "en": "⏰ Orders stalled now: {n}"},
    "digest.approvals": {"zh": "⏳ 待审批：{n}", "en": "⏳ Approvals pending: {n}"},
    "digest.approval_line": {"zh": "{order} {amount} {city} · 已等待 {waited} · {who}", "en": "{order} {amount} {city} · waiting {waited} · {who}"},
    "digest.anomalies": {"zh": "⚠️ 近 24 小时异常备注：{n} 条", "en": "⚠️ Exception notes, last 24 h: {n}"},
    "digest.uncategorised": {"zh": "未分类", "en": "Uncategorised"},
    "digest.trend_line": {"zh": "📈 趋势：{category} {what}", "en": "📈 Trend: {category} {what}"},
    "chart.title": {"zh": "📊 早报图表 · {date}", "en": "📊 Digest chart · {date}"},
    "chart.funnel": {"zh": "各阶段在途订单", "en": "Open orders by stage"},
    "chart.stalls": {"zh": "近 7 天每日超时", "en": "Stalls per day, last 7 days"},
    "chart.anomalies": {"zh": "本周异常类别", "en": "Exception categories this week"},
    "chart.other": {"zh": "其他", "en": "Other"},
    "chart.none": {"zh": "本周无异常备注", "en": "No exception notes this week"},
    "digest.dead": {"zh": "⚠️ 无法入库、等待处理的订单：{n}", "en": "⚠️ Orders that could not be stored, waiting: {n}"},
}

ROLE_NAMES = {
    "zh": {"admin": "管理员", "manager": "经理", "finance": "财务", "supply_chain": "供应链", "customer": "客户"},
    "en": {"admin": "admin", "manager": "manager", "finance": "finance", "supply_chain": "supply chain", "customer": "customer"},
}


def t(key: str, language: str = "zh", **kw: object) -> str:
    """The string `key` in `language` (Chinese when unknown), formatted with `kw`."""
    entry = _STRINGS[key]
    return entry.get(language, entry["zh"]).format(**kw)


# What each kind of chat message is, for an admin told that one could not be delivered.
MESSAGE_KINDS = {
    "zh": {"approval_request": "审批请求", "approval_outcome": "审批卡片更新", "stall_alert": "超时提醒",
           "trend_alert": "异常趋势提醒", "digest": "早报", "carrier_degraded": "承运商时效提醒",
           "tracking_update": "物流通知", "tracking_stall": "物流停滞提醒", "refund_update": "退款通知",
           "dead_letter": "入库失败提醒", "rules_invalid": "规则文件错误提醒", "admin_notice": "管理员通知"},
    "en": {"approval_request": "approval request", "approval_outcome": "approval card update",
           "stall_alert": "stall alert", "trend_alert": "anomaly trend alert", "digest": "morning digest",
           "carrier_degraded": "carrier slow-down alert", "tracking_update": "shipping notice",
           "tracking_stall": "tracking stall alert", "refund_update": "refund notice",
           "dead_letter": "could-not-store alert", "rules_invalid": "rules file alert", "admin_notice": "admin notice"},
}


def message_kind(kind: str, language: str = "zh") -> str:
    """An outbox row's kind as people say it (超时提醒, not `stall_alert`); any other kind is just a message."""
    names = MESSAGE_KINDS.get(language, MESSAGE_KINDS["zh"])
    return names.get(kind, "消息" if language != "en" else "message")


PLATFORM_NAMES = {"telegram": {"zh": "Telegram", "en": "Telegram"}, "wecom": {"zh": "企业微信", "en": "WeCom"},
                  "email": {"zh": "邮件", "en": "e-mail"}}


def platform_name(platform: str, language: str = "zh") -> str:
    names = PLATFORM_NAMES.get(platform)
    return names.get(language, names["zh"]) if names else platform


def role_name(role: str, language: str = "zh") -> str:
    return ROLE_NAMES.get(language, ROLE_NAMES["zh"]).get(role, role)


def mask_phone(phone: str | None) -> str:
    """`13800138000` → `138****8000`; short numbers keep only their last two digits."""
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    if len(digits) >= 11:
        digits = digits[-11:]
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 4:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "****" if digits else ""


def progress_line(stage: Stage | str, language: str = "zh") -> str:
    """The six-step board as one line: done ✅, current 🔵, to come ⚪; a cancelled order says so."""
    st = Stage(stage)
    if st == Stage.CANCELLED:
        return "❌ " + label(st, language)
    steps = BOARD[:-1]  # the six working stages; `completed` is shown as all done
    cur = BOARD.index(st)
    marks = []
    for i, s in enumerate(steps):
        mark = "✅" if i < cur else ("🔵" if i == cur else "⚪")
        marks.append(mark + label(s, language))
    return " → ".join(marks)


def fmt_money(amount: Decimal, currency: str = "CNY") -> str:
    sym = "¥" if currency == "CNY" else currency + " "
    return f"{sym}{amount:,.2f}"


def fmt_time(at: datetime | None, timezone: str = "Asia/Shanghai") -> str:
    if at is None:
        return "—"
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def fmt_date(at: datetime | None, timezone: str = "Asia/Shanghai") -> str:
    return "—" if at is None else at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d")


def fmt_duration(td: timedelta, language: str = "zh") -> str:
    minutes = max(int(td.total_seconds()) // 60, 0)
    d, rest = divmod(minutes, 1440)
    h, m = divmod(rest, 60)
    if language == "en":
        parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m and not d else ""]
        return "".join(parts) or "0m"
    parts = [f"{d}天" if d else "", f"{h}小时" if h else "", f"{m}分" if m and not d else ""]
    return "".join(parts) or "0分"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def paginate(lines: Sequence[str], *, budget: int = TEXT_BUDGET, header: str = "", language: str = "zh") -> list[str]:
    """Split lines into messages of at most `budget` characters each, every line kept (over-long lines wrapped).

    Each page after the first repeats nothing but a page marker, so the whole list arrives in order.
    """
    marker_room = 24
    room = budget - marker_room - (len(header) + 1 if header else 0)
    pieces: list[str] = []
    for line in lines:
        while len(line) > room:
            pieces.append(line[:room])
            line = line[room:]
        pieces.append(line)
    pages: list[list[str]] = [[]]
    size = 0
    for piece in pieces:
        if pages[-1] and size + len(piece) + 1 > room:
            pages.append([])
            size = 0
        pages[-1].append(piece)
        size += len(piece) + 1
    n = len(pages)
    out = []
    for i, page in enumerate(pages, 1):
        head = [header] if header else []
        if n > 1:
            head.append(t("page.header", language, i=i, n=n))
        out.append("\n".join(head + page))
    return out


def mask_name(name: str) -> str:
    """`王女士` → `王**`: staff cards identify a customer without spreading their name."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * min(max(len(name) - 1, 1), 4)
