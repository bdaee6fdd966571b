"""Chat strings of carriers and tracking (Chinese default, English), kept beside the feature."""

from __future__ import annotations

_STRINGS: dict[str, dict[str, str]] = {
    "carrier.sf": {"zh": "顺丰速运", "en": "SF Express"},
    "carrier.deppon": {"zh": "德邦快递", "en": "Deppon"},
    "carrier.kuaidi100": {"zh": "快递100", "en": "Kuaidi100"},
    "tracking.shipped_customer": {
        "zh": "📦 您的订单 {order} 已发货：{carrier}，运单号 {waybill}。发送“到哪了”可随时查看物流进度。",
        "en": "📦 Your order {order} has shipped: {carrier}, waybill {waybill}. Ask “where is it” for progress."},
    "tracking.delivered_customer": {
        "zh": "✅ 您的订单 {order}（运单 {waybill}）已签收。{line}\n我们将尽快与您预约安装。",
        "en": "✅ Your order {order} (waybill {waybill}) was delivered. {line}\n"
              "We will contact you to book the installation."},
    "tracking.delivered_owner": {
        "zh": "📬 订单 {order} 已签收（运单 {waybill}），已转入「待安装」。{line}",
        "en": "📬 Order {order} was delivered (waybill {waybill}) and is now awaiting installation. {line}"},
    "tracking.stalled": {
        "zh": "🚚 物流停滞：{carrier} 运单 {waybill}（订单 {order}）已 {hours} 小时无新轨迹。",
        "en": "🚚 Tracking stalled: {carrier} waybill {waybill} (order {order}) has had no scan for {hours} hours."},
    "tracking.none": {"zh": "订单 {order} 暂无物流信息。", "en": "Order {order} has no tracking yet."},
    "tracking.header": {"zh": "🚚 {carrier} {waybill} · {status}", "en": "🚚 {carrier} {waybill} · {status}"},
    "tracking.shipped_staff": {"zh": "已发货：订单 {order} · {carrier} {waybill}",
                               "en": "Shipped: order {order} · {carrier} {waybill}"},
    "tracking.ship_failed": {"zh": "发货失败：{error}", "en": "Shipping failed: {error}"},
    "tracking.usage_ship": {"zh": "用法：/ship 订单号 [承运商 sf|deppon|kuaidi100] [运单号]",
                            "en": "Usage: /ship ORDER [carrier sf|deppon|kuaidi100] [waybill]"},
    "tracking.usage_track": {"zh": "用法：/track 订单号", "en": "Usage: /track ORDER"},
    "switch.button": {"zh": "切换到 {carrier}", "en": "Switch to {carrier}"},
    "switch.undo_button": {"zh": "撤销切换", "en": "Undo"},
    "switch.done": {"zh": "🔀 {region} 已切换承运商：{new}（备用 {backup}），原为 {old}。\n规则新版本 {version}，由 {by} 操作；下一张运单起生效。",
                    "en": "🔀 {region} now ships with {new} (backup {backup}), was {old}.\nNew rules version {version}, "
                          "by {by}; applies from the next waybill."},
    "switch.undone": {"zh": "↩️ 已撤销 {region} 的承运商切换：恢复为 {new}（备用 {backup}）。\n规则新版本 {version}，由 {by} 操作。",
                      "en": "↩️ The carrier switch of {region} is undone: back to {new} (backup {backup}).\n"
                            "New rules version {version}, by {by}."},
    "switch.default": {"zh": "默认承运商", "en": "the default carrier"},
    "switch.none": {"zh": "无", "en": "none"},
    "switch.status_done": {"zh": "✅ 已由 {by} 切换到 {carrier}", "en": "✅ Switched to {carrier} by {by}"},
    "switch.status_undone": {"zh": "↩️ 已由 {by} 撤销", "en": "↩️ Undone by {by}"},
    "switch.toast_done": {"zh": "已切换：{region} → {carrier}", "en": "Switched: {region} → {carrier}"},
    "switch.toast_undone": {"zh": "已撤销：{region} 恢复为 {carrier}", "en": "Undone: {region} back to {carrier}"},
    "switch.err.forbidden": {"zh": "只有管理员或 {region} 的经理可以切换该地区的承运商",
                             "en": "only an admin or a manager of {region} may switch its carrier"},
    "switch.err.unknown_region": {"zh": "规则文件中没有地区 {region}（已有：{known}）",
                                  "en": "unknown region {region} (the rules file has: {known})"},
    "switch.err.unknown_carrier": {"zh": "未知承运商 {carrier}（可选：{known}）",
                                   "en": "unknown carrier {carrier} (one of {known})"},
    "switch.err.already": {"zh": "{region} 已经使用 {carrier}", "en": "{region} already ships with {carrier}"},
    "switch.err.changed": {"zh": "{region} 的承运商规则在切换后又被修改过，请直接切换",
                           "en": "the carrier rules of {region} changed since that switch; switch explicitly"},
    "switch.err.not_found": {"zh": "没有编号为 {id} 的承运商切换", "en": "no carrier switch {id}"},
    "switch.err.undone": {"zh": "承运商切换 {id} 已撤销过", "en": "carrier switch {id} was undone already"},
    "switch.err.invalid": {"zh": "规则文件未修改：{detail}", "en": "the rules file was not changed: {detail}"},
    "switch.refused": {"zh": "未切换：{detail}", "en": "Not switched: {detail}"},
    "switch.gone": {"zh": "这条提醒已失效", "en": "This alert is no longer valid"},
    "status.picked_up": {"zh": "已揽收", "en": "picked up"},
    "status.in_transit": {"zh": "运输中", "en": "in transit"},
    "status.out_for_delivery": {"zh": "派送中", "en": "out for delivery"},
    "status.delivered": {"zh": "已签收", "en": "delivered"},
    "status.exception": {"zh": "异常", "en": "exception"},
    "status.returning": {"zh": "退回中", "en": "returning"},
    "status.returned": {"zh": "已退回", "en": "returned"},
}


def t(key: str, language: str = "zh", **kw: object) -> str:
    entry = _STRINGS[key]
    return entry.get(language, entry["zh"]).format(**kw)
