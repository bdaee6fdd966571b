"""What `/openapi.json` and `/docs` tell an integrator: the real request bodies of the intake webhook (a generic
order, a batch, a Tmall trade) and a response model for every route, with Chinese examples.

The intake route reads its raw body itself (the signature covers the exact bytes), so FastAPI cannot infer the
body; the schemas are the models the route validates with (`OrderData`, `TmallTrade`), attached here. Response
models are documentation of what the handlers return (extra fields allowed, so a field added by a route shows up
without breaking the contract). `/docs` serves Swagger UI from OrderHub itself (the swagger-ui-bundle package):
no CDN, so it works offline and in mainland China.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.channels.tmall import TmallTrade
from engine.order import OrderData

DOCS_ASSETS = "/docs-assets"

GENERIC_EXAMPLE: dict[str, Any] = {
    "external_id": "WX20251111-0001",
    "channel": "generic",
    "created_at": "2025-11-11T09:30:00+08:00",
    "customer": {"id": "C10086", "name": "王女士", "phone": "13800138000", "city": "杭州", "tier": "vip"},
    "items": [{"sku": "CUR-BLK-01", "name": "遮光窗帘（米白）", "qty": 2, "unit_price": "1890.00",
               "attributes": {"width_cm": 360, "height_cm": 280, "fabric_batch": "B2025-20"}}],
    "amount": "3780.00",
    "currency": "CNY",
    "custom_fields": {"install_date": "2025-11-20"},
    "notes": "请周末安装",
}
TMALL_EXAMPLE: dict[str, Any] = {
    "tid": 3345678901234567,
    "payment": "2100.00",
    "created": "2025-11-11 00:03:12",
    "buyer_nick": "t***8",
    "receiver_name": "李先生",
    "receiver_mobile": "13900139000",
    "receiver_state": "广东省",
    "receiver_city": "广州市",
    "buyer_message": "工作日送货",
    "orders": {"order": [{"oid": 3345678901234568, "outer_sku_id": "CUR-SHR-02", "title": "客厅纱帘",
                          "num": 1, "price": "2100.00", "sku_properties_name": "宽度:280cm;高度:260cm;颜色分类:米白"}]},
}


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorOut(_Doc):
    error: str = Field(examples=["invalid_order"])
    detail: str = Field(examples=["1 invalid field(s); nothing was queued"])


class AcceptedOut(_Doc):
    accepted: int = Field(description="orders durably queued", examples=[2])


class HealthOut(_Doc):
    status: str = Field(examples=["ok"])
    queue_depth: int = Field(examples=[0])


class CustomerOut(_Doc):
    id: str = Field(examples=["C10086"])
    name: str = Field(examples=["王女士"])
    phone: str = Field(examples=["13800138000"])
    city: str = Field(examples=["杭州"])
    tier: str = Field(examples=["vip"])


class ItemOut(_Doc):
    sku: str = Field(examples=["CUR-BLK-01"])
    name: str = Field(examples=["遮光窗帘（米白）"])
    qty: int = Field(examples=[2])
    unit_price: str = Field(description="money: a string with two decimals", examples=["1890.00"])
    attributes: dict[str, Any] = Field(examples=[{"width_cm": 360, "height_cm": 280}])


class HistoryOut(_Doc):
    at: datetime
    from_: str | None = Field(alias="from", examples=["pending_confirm"])
    to: str = Field(examples=["designing"])
    by: str = Field(examples=["华东经理"])
    reason: str = Field(examples=["approval 12"])


class ExceptionNoteOut(_Doc):
    id: int = Field(examples=[7], description="what `POST /api/notes/{id}/category` corrects")
    text: str = Field(examples=["仓库停电，无法出库"])
    category: str | None = Field(default=None, examples=["logistics_delay"])


class OrderOut(_Doc):
    id: int = Field(examples=[42])
    key: str = Field(examples=["generic:WX20251111-0001"])
    channel: str = Field(examples=["generic"])
    external_id: str = Field(examples=["WX20251111-0001"])
    created_at: datetime
    customer: CustomerOut
    items: list[ItemOut]
    amount: str = Field(description="money: a string with two decimals", examples=["3780.00"])
    currency: str = Field(examples=["CNY"])
    custom_fields: dict[str, Any] = Field(examples=[{"install_date": "2025-11-20"}])
    remark: str = Field(description="what the customer or channel wrote on the order", examples=["请周末安装"])
    exception_notes: list[ExceptionNoteOut] = Field(description="staff's exception notes, classified")
    stage: str = Field(examples=["designing"])
    stage_label: str = Field(examples=["设计中"])
    stage_entered_at: datetime
    stage_deadline: datetime | None = None
    region: str | None = Field(default=None, examples=["华东"])
    priority: int = Field(examples=[65])
    flagged: bool = False
    production_base: str | None = Field(default=None, examples=["HZ"])
    owner: str | None = Field(default=None, description="the owner's user name (see POST /api/orders/{id}/assign)",
                              examples=["张三"])
    work_order_no: str | None = None
    tracking: Any = None
    pending_approvals: Any = None
    received_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    rules_version: str | None = None
    history: list[HistoryOut] = Field(default_factory=list)


class OrderListOut(_Doc):
    total: int = Field(examples=[1])
    limit: int = Field(examples=[50])
    offset: int = Field(examples=[0])
    items: list[OrderOut]


class NoteOut(_Doc):
    id: int = Field(examples=[7])
    order_id: int = Field(examples=[42])
    text: str = Field(examples=["仓库停电，无法出库"])
    category: str | None = Field(default=None, examples=["logistics_delay"])
    score: float | None = Field(default=None, examples=[0.82])
    candidates: list[str] = Field(default_factory=list, examples=[["logistics_delay", "stock_shortage"]])
    review: bool = Field(default=False, description="sent to the rules' review_role: the classifier was unsure")


class RelabelOut(_Doc):
    id: int = Field(examples=[7])
    order_id: int = Field(examples=[42])
    order: str = Field(examples=["tmall:TM20251111001"])
    previous: str | None = Field(default=None, examples=["logistics_delay"])
    category: str = Field(examples=["stock_shortage"])


class ApprovalOut(_Doc):
    id: int = Field(examples=[12])
    order_id: int = Field(examples=[42])
    level: int = Field(examples=[1])
    required_role: str = Field(examples=["manager"])
    region: str | None = Field(default=None, examples=["华东"])
    amount: str = Field(examples=["9999.00"])
    status: str = Field(examples=["pending"])


class ApprovalListOut(_Doc):
    total: int = Field(examples=[1])
    items: list[ApprovalOut]


class KpisOut(_Doc):
    since: datetime
    until: datetime
    order_accuracy: float | None = Field(examples=[0.982])
    average_fulfilment_cycle_days: float | None = Field(examples=[6.4])
    manual_intervention_rate: float | None = Field(examples=[0.12])
    availability: float | None = Field(examples=[0.999])


class DecisionOut(ApprovalOut):
    decided_by: str | None = Field(default=None, examples=["华东经理"])
    reason: str | None = Field(default=None, examples=["客户已电话确认"])


class CarrierAnswerOut(_Doc):
    """Each carrier gets the answer its documentation expects (SF `return_code`, Kuaidi100 `result`, Deppon
    `resultCode`)."""

    return_code: str | None = Field(default=None, examples=["0000"])
    return_msg: str | None = Field(default=None, examples=["成功"])


class TrackingEventOut(_Doc):
    at: datetime
    status: str = Field(examples=["in_transit"])
    text: str = Field(examples=["快件到达【上海浦江中转场】"])
    place: str | None = Field(default=None, examples=["上海"])


class TrackingOut(_Doc):
    carrier: str | None = Field(default=None, examples=["sf"])
    waybill: str | None = Field(default=None, examples=["SF1234567890123"])
    status: str | None = Field(default=None, examples=["in_transit"])
    events: list[TrackingEventOut] = Field(default_factory=list)


class ShipOut(_Doc):
    order: OrderOut
    carrier: str = Field(examples=["sf"])
    waybill: str = Field(examples=["SF1234567890123"])
    created: bool = Field(description="OrderHub created the waybill with the carrier", examples=[True])
    failed_carriers: list[str] = Field(default_factory=list, examples=[[]])


class RefundOut(_Doc):
    id: int = Field(examples=[5])
    order_id: int = Field(examples=[42])
    source: str = Field(examples=["chat"])
    amount: str = Field(description="money: a string with two decimals", examples=["1200.00"])
    reason: str = Field(examples=["尺寸不合适"])
    state: str = Field(examples=["waiting_proof"])
    rule_id: str | None = Field(default=None, examples=["in-transit-needs-proof"])
    decision: dict[str, Any] | None = None
    automatic: bool | None = None
    requested_by: str | None = Field(default=None, examples=["customer:17"])
    requested_at: datetime | None = None
    decided_at: datetime | None = None
    approval_id: int | None = None
    proof: dict[str, Any] | None = None


class RefundListOut(_Doc):
    total: int = Field(examples=[1])
    items: list[RefundOut]


class AssignOut(_Doc):
    order_id: int = Field(examples=[42])
    key: str = Field(examples=["tmall:TM123"])
    owner: str = Field(description="the new owner's user name", examples=["张三"])
    previous: str | None = Field(default=None, description="the owner before (null: none)", examples=["李四"])


# (method, path) → (status, model) of the success response
RESPONSES: dict[tuple[str, str], tuple[str, type[BaseModel]]] = {
    ("post", "/webhooks/orders/{channel}"): ("202", AcceptedOut),
    ("get", "/api/orders/{ref}"): ("200", OrderOut),
    ("get", "/api/orders"): ("200", OrderListOut),
    ("post", "/api/orders/{ref}/transition"): ("200", OrderOut),
    ("post", "/api/orders/{ref}/notes"): ("201", NoteOut),
    ("post", "/api/notes/{note_id}/category"): ("200", RelabelOut),
    ("post", "/api/orders/{ref}/assign"): ("200", AssignOut),
    ("get", "/api/approvals"): ("200", ApprovalListOut),
    ("post", "/api/approvals/{approval_id}/decision"): ("200", DecisionOut),
    ("post", "/webhooks/logistics/{carrier}"): ("200", CarrierAnswerOut),
    ("post", "/api/orders/{ref}/ship"): ("200", ShipOut),
    ("get", "/api/orders/{ref}/tracking"): ("200", TrackingOut),
    ("post", "/webhooks/refunds/taobao"): ("202", AcceptedOut),
    ("post", "/api/orders/{ref}/refunds"): ("201", RefundOut),
    ("get", "/api/refunds"): ("200", RefundListOut),
    ("get", "/api/refunds/{refund_id}"): ("200", RefundOut),
    ("post", "/api/refunds/{refund_id}/proof"): ("200", RefundOut),
    ("post", "/api/refunds/{refund_id}/decision"): ("200", RefundOut),
    ("post", "/api/refunds/{refund_id}/refunded"): ("200", RefundOut),
    ("get", "/api/kpis"): ("200", KpisOut),
    ("get", "/healthz"): ("200", HealthOut),
}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str = "serialization") -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _intake_body(components: dict[str, Any]) -> dict[str, Any]:
    order = _schema(OrderData, components, "validation")
    tmall = _schema(TmallTrade, components, "validation")
    components["OrderBatch"] = {"type": "object", "required": ["orders"], "additionalProperties": False,
                                "properties": {"orders": {"type": "array", "minItems": 1, "maxItems": 1000,
                                                          "items": {"anyOf": [order, tmall]}}}}
    batch = {"$ref": "#/components/schemas/OrderBatch"}
    return {
        "required": True,
        "description": "Signed with the channel's secret: header `X-OrderHub-Signature: t=<unix seconds>,"
                       "v1=<hex HMAC-SHA256 of '<t>.' + body>`. `/webhooks/orders/generic` takes the generic "
                       "order, `/webhooks/orders/tmall` a Tmall trade (taobao.trade.fullinfo shape); either one "
                       "object or `{\"orders\": [...]}` with up to 1000.",
        "content": {"application/json": {
            "schema": {"anyOf": [order, batch, tmall]},
            "examples": {
                "generic": {"summary": "一个订单（generic）", "value": GENERIC_EXAMPLE},
                "batch": {"summary": "批量（最多 1000 个）", "value": {"orders": [GENERIC_EXAMPLE]}},
                "tmall": {"summary": "天猫交易（tmall）", "value": TMALL_EXAMPLE},
            },
        }},
    }


def install(app: FastAPI) -> None:
    """Replace the app's OpenAPI generator and serve Swagger UI from local assets at /docs."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        error = _schema(ErrorOut, components)
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                status_model = RESPONSES.get((method, path))
                responses = op.setdefault("responses", {})
                if status_model is not None:
                    status, model = status_model
                    ok = responses.setdefault(status, {"description": "OK"})
                    ok["content"] = {"application/json": {"schema": _schema(model, components)}}
                if path.startswith(("/api", "/webhooks")):
                    for code, what in (("401", "no or bad credentials"), ("403", "not allowed"),
                                       ("404", "not found"), ("422", "invalid input")):
                        if code in responses and "content" in responses[code] and code != "422":
                            continue
                        responses[code] = {"description": what,
                                           "content": {"application/json": {"schema": error}}}
                if (method, path) == ("post", "/webhooks/orders/{channel}"):
                    op["requestBody"] = _intake_body(components)
                if path == "/metrics":
                    responses["200"] = {"description": "Prometheus text format",
                                        "content": {"text/plain": {"schema": {"type": "string"}}}}
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]

    import swagger_ui_bundle
    from starlette.staticfiles import StaticFiles

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
