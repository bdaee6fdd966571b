"""What the customer and finance are told about a refund, in Chinese (default) and English (engine.text's rules)."""

from __future__ import annotations

_STRINGS: dict[str, dict[str, str]] = {
    "refund.approved": {"zh": "退款申请 #{id}（订单 {order}，¥{amount}）已通过。{why}",
                        "en": "Refund #{id} (order {order}, ¥{amount}) is approved. {why}"},
    "refund.rejected": {"zh": "退款申请 #{id}（订单 {order}）未通过：{why}",
                        "en": "Refund #{id} (order {order}) was refused: {why}"},
    "refund.waiting_proof": {"zh": "退款申请 #{id}（订单 {order}）已收到。{why}请直接在此发送退货运单照片。",
                             "en": "Refund #{id} (order {order}) received. {why} Please send a photo of the return "
                                   "waybill here."},
    "refund.verifying": {"zh": "退款申请 #{id}（订单 {order}）已收到凭证，正在人工核实：{why}",
                         "en": "Refund #{id} (order {order}): proof received, a person is checking it: {why}"},
    "refund.waiting_finance": {"zh": "退款申请 #{id}（订单 {order}，¥{amount}）需财务审批，审批后会通知您。{why}",
                               "en": "Refund #{id} (order {order}, ¥{amount}) needs finance approval; you will be "
                                     "told. {why}"},
    "refund.refunded": {"zh": "退款 #{id}（订单 {order}，¥{amount}）已退回原支付账户。",
                        "en": "Refund #{id} (order {order}, ¥{amount}) has been paid back."},
    "refund.after_sales": {"zh": "售后服务：{contact}", "en": "After-sales: {contact}"},
    "refund.finance_ok": {"zh": "财务已批准。", "en": "Finance approved it."},
    "refund.finance_no": {"zh": "财务未批准：{reason}", "en": "Finance refused it: {reason}"},
    "refund.proof_ok": {"zh": "承运商已确认退件（{waybill}）。", "en": "The carrier confirmed the return ({waybill})."},
    "proof.unreadable": {"zh": "照片中未识别到运单号", "en": "no waybill number could be read from the photo"},
    "proof.wrong_carrier": {"zh": "运单号 {waybill} 不属于可查询的承运商", "en": "waybill {waybill} is not of a "
                                                                          "carrier we can track"},
    "proof.not_moving": {"zh": "承运商暂无退件 {waybill} 发往商家的记录", "en": "the carrier shows no return of "
                                                                        "{waybill} towards us yet"},
    "proof.bad_file": {"zh": "无法接收此文件：{detail}", "en": "This file cannot be accepted: {detail}"},
    "proof.not_waiting": {"zh": "退款申请 #{id} 当前无需上传凭证（{state}）。", "en": "Refund #{id} needs no proof now "
                                                                              "({state})."},
    "proof.too_big": {"zh": "照片超过 10 MiB", "en": "the photo is larger than 10 MiB"},
    "proof.not_image": {"zh": "只接受 JPEG 或 PNG 照片（按内容识别，不看文件名）",
                        "en": "only a JPEG or PNG photo is accepted (judged by its content, not its name)"},
    "proof.gone": {"zh": "文件无法下载，请重新发送", "en": "the file could not be fetched; please send it again"},
    "ask.reason": {"zh": "请回复退款原因（订单 {order}）：", "en": "Please reply with the reason for the refund "
                                                               "(order {order}):"},
    "err.order": {"zh": "未找到您的订单 {order}。", "en": "Order {order} not found among your orders."},
    "err.generic": {"zh": "退款申请未受理：{detail}", "en": "The refund request was not accepted: {detail}"},
    "btn.refund": {"zh": "申请退款", "en": "Request a refund"},
    "btn.prompt": {"zh": "如需退款，请点下方按钮", "en": "Need a refund? Press the button"},
    "btn.pick_reason": {"zh": "订单 {order} 申请退款：请选择原因", "en": "Refund of order {order}: pick a reason"},
    "btn.other_reason": {"zh": "其他原因请发送：我要退款 {order} <原因>", "en": "Another reason: send “refund {order} <reason>”"},
    "reason.changed_mind": {"zh": "不想要了", "en": "Changed my mind"},
    "reason.wrong_size": {"zh": "尺寸不符", "en": "Wrong size"},
    "reason.quality": {"zh": "质量问题", "en": "Quality problem"},
    "reason.too_slow": {"zh": "等待时间太长", "en": "Taking too long"},
    # the finance card's extra fields
    "f.refund": {"zh": "退款", "en": "Refund"},
    "f.reason": {"zh": "原因", "en": "Reason"},
    "f.refunded_before": {"zh": "已退款", "en": "Refunded before"},
    "f.proof": {"zh": "凭证", "en": "Proof"},
    "f.ocr": {"zh": "识别结果", "en": "OCR reading"},
    "f.tracking": {"zh": "物流状态", "en": "Tracking"},
    "f.rule": {"zh": "规则", "en": "Rule"},
    "f.history": {"zh": "进度", "en": "History"},
    "history": {"zh": "申请时阶段 {stage} · 发货 {shipped} · 签收 {delivered}",
                "en": "stage when asked {stage} · shipped {shipped} · delivered {delivered}"},
    "towards_merchant": {"zh": "正发往商家", "en": "on its way back to us"},
    "state.requested": {"zh": "已申请", "en": "requested"},
    "state.waiting_proof": {"zh": "等待退货凭证", "en": "waiting for proof"},
    "state.verifying": {"zh": "人工核实中", "en": "being checked"},
    "state.waiting_finance": {"zh": "等待财务审批", "en": "waiting for finance"},
    "state.approved": {"zh": "已通过", "en": "approved"},
    "state.rejected": {"zh": "未通过", "en": "refused"},
    "state.refunded": {"zh": "已退款", "en": "refunded"},
    "verdict.confirmed": {"zh": "承运商已确认退件", "en": "the carrier confirmed the return"},
    "verdict.unreadable": {"zh": "未识别到运单号", "en": "no waybill number read"},
    "verdict.wrong_carrier": {"zh": "运单号不属于可查询的承运商", "en": "not a carrier we can track"},
    "verdict.not_moving": {"zh": "承运商暂无退件记录", "en": "the carrier shows no return yet"},
}


def rt(key: str, language: str = "zh", **kw: object) -> str:
    entry = _STRINGS[key]
    return (entry.get(language) or entry["zh"]).format(**kw)
