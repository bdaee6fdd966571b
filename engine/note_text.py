"""Chat strings of exception notes and their corrections (Chinese default, English), kept beside the feature."""

from __future__ import annotations

_STRINGS: dict[str, dict[str, str]] = {
    "trend.f.notes": {"zh": "备注", "en": "Notes"},
    "note.recorded": {"zh": "📝 已记录订单 {order} 的异常备注", "en": "📝 Exception note recorded on order {order}"},
    "note.f.text": {"zh": "备注", "en": "Note"},
    "note.f.category": {"zh": "类别", "en": "Category"},
    "note.f.confidence": {"zh": "置信度", "en": "Confidence"},
    "note.unclassified": {"zh": "未分类", "en": "unclassified"},
    "note.review_sent": {"zh": "置信度较低，已请供应链负责人确认类别。", "en": "Low confidence: the supply-chain "
                                                                    "lead was asked to confirm the category."},
    "note.trends": {"zh": "已触发趋势提醒：{trends}", "en": "Trend alert raised: {trends}"},
    "note.btn.correct": {"zh": "✏️ 更正类别", "en": "✏️ Correct category"},
    "note.btn.more": {"zh": "更多类别 ›", "en": "More ›"},
    "note.menu.title": {"zh": "选择备注 #{note} 的正确类别", "en": "Choose the right category of note #{note}"},
    "note.review.title": {"zh": "🔎 异常备注待确认 · 订单 {order}", "en": "🔎 Note to confirm · order {order}"},
    "note.review.status": {"zh": "系统判断：{guess}（置信度 {confidence}）· 请选择类别",
                           "en": "Classifier: {guess} (confidence {confidence}) · please choose the category"},
    "note.relabelled": {"zh": "✅ 备注 #{note} 已归为「{category}」（{actor}），之后的相似备注将按此分类。",
                        "en": "✅ Note #{note} is now “{category}” ({actor}); similar notes will be classified so."},
    "note.relabelled_toast": {"zh": "已更正为 {category}", "en": "Corrected to {category}"},
    "note.usage": {"zh": "用法：/note 订单号 备注内容（也可直接回复提醒卡片）",
                   "en": "Usage: /note ORDER text (or reply to an alert card)"},
    "note.forbidden": {"zh": "您无权为订单 {order} 添加备注。", "en": "You may not add notes to order {order}."},
    "note.refused.forbidden": {"zh": "您无权更正这条备注的类别。", "en": "You may not correct this note's category."},
    "note.refused.note_not_found": {"zh": "找不到这条备注。", "en": "No such note."},
    "note.refused.unknown_category": {"zh": "该类别已不在规则中。", "en": "That category is no longer in the rules."},
}


def nt(key: str, language: str = "zh", **kw: object) -> str:
    """The string `key` in `language` (Chinese when unknown), formatted with `kw`."""
    entry = _STRINGS[key]
    return entry.get(language, entry["zh"]).format(**kw)
