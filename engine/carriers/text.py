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
