"""Chat strings of order owners and `/assign` (Chinese default, English), kept beside the feature."""

from __future__ import annotations

_STRINGS: dict[str, dict[str, str]] = {
    "f.owner": {"zh": "负责人", "en": "Owner"},
    "assign.usage": {"zh": "用法：/assign 订单号 用户名", "en": "Usage: /assign ORDER NAME"},
    "assign.done": {"zh": "✅ 订单 {order} 的负责人已改为 {owner}（原：{previous}）。",
                    "en": "✅ Order {order} is now owned by {owner} (was: {previous})."},
    "assign.nobody": {"zh": "无", "en": "nobody"},
    "assign.bad_input": {"zh": "无法改派：订单号或用户名无效。", "en": "Cannot reassign: invalid order or user name."},
    "assign.order_not_found": {"zh": "找不到订单 {order}（请用订单内部编号或 渠道:外部单号）。",
                               "en": "Order {order} not found (use the internal id or channel:external_id)."},
    "assign.forbidden": {"zh": "只有管理员或该订单所在区域的经理可以改派负责人。",
                         "en": "Only admins and managers of the order's region may reassign it."},
    "assign.user_not_found": {"zh": "没有名为 {name} 的员工。", "en": "No staff user named {name}."},
    "assign.user_inactive": {"zh": "{name} 已停用，不能作为负责人。", "en": "{name} is not active."},
    "assign.user_not_allowed": {"zh": "{name} 不负责该订单所在区域，不能作为负责人。",
                                "en": "{name} may not own an order of this region."},
    "assign.changed": {"zh": "负责人刚被他人修改，请刷新后重试。",
                       "en": "Someone changed the owner meanwhile; look again and retry."},
}


def t(key: str, language: str = "zh", **kw: object) -> str:
    entry = _STRINGS[key]
    return entry.get(language, entry["zh"]).format(**kw)
