"""The rules file format as pydantic models: the single source of validation and of the JSON Schema editors use.

Models only describe shape and simple types; cross-references (unknown base, unknown field in an expression, ...)
are checked by the compiler, which knows the whole file.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    field_validator,
    Field,
    model_validator,
    PlainSerializer,
    Tag,
    WithJsonSchema,
)

from engine.stages import Stage
from engine.carriers.rules import CarrierRules
from engine.rules.routing import work_order_no

_DURATION_RE = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*$")


def parse_duration(value: object) -> timedelta:
    """`48h`, `2d`, `90m`, `1h30m`; a bare 0 means zero. Strings keep the file readable for non-developers."""
    if isinstance(value, timedelta):
        return value
    if value == 0 and not isinstance(value, bool):
        return timedelta(0)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m and any(m.groups()):
            d, h, mi = (int(g) if g else 0 for g in m.groups())
            return timedelta(days=d, hours=h, minutes=mi)
    raise ValueError(f"expected a duration such as 48h, 2d, 30m or 1h30m, got {value!r}")


def format_duration(td: timedelta) -> str:
    total = int(td.total_seconds()) // 60
    d, rest = divmod(total, 1440)
    h, m = divmod(rest, 60)
    out = (f"{d}d" if d else "") + (f"{h}h" if h else "") + (f"{m}m" if m else "")
    return out or "0m"


def parse_amount(value: object) -> Decimal:
    """Money from YAML: ints and quoted strings are exact; floats go through str() so 0.1 stays 0.1."""
    if isinstance(value, bool):
        raise ValueError("expected an amount of money, got true/false")  # noqa: TRY004 - pydantic wants ValueError
    if isinstance(value, (int, Decimal, float, str)):
        try:
            d = Decimal(value) if isinstance(value, int) else Decimal(str(value).strip())
        except InvalidOperation:
            pass
        else:
            if d.is_finite():
                return d
    raise ValueError(f"expected an amount of money such as 5000 or \"5000.00\", got {value!r}")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+d)?(\d+h)?(\d+m)?$", "examples": ["48h", "2d", "30m"]}),
]
Amount = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": ["number", "string"], "examples": [5000, "5000.00"]}),
]
Fraction = Annotated[float, Field(gt=0, lt=1)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\-.]+$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Role = Literal["admin", "manager", "finance", "supply_chain"]
LadderRole = Literal["owner", "supervisor", "region_head", "admin", "manager", "finance", "supply_chain"]
Coords = Annotated[tuple[float, float], Field(description="[latitude, longitude]")]


class _M(BaseModel):
    # A typo in a rules file must be an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text_from_str(value: object) -> object:
    return {"zh": value, "en": value} if isinstance(value, str) else value


class Text(_M):
    """A user-facing sentence in Chinese (default) and English; a plain string is used for both."""

    zh: str
    en: str = ""

    def get(self, language: str = "zh") -> str:
        return (self.en or self.zh) if language == "en" else self.zh


LocalText = Annotated[Text, BeforeValidator(_text_from_str)]


# --- conditions -------------------------------------------------------------------------------------------------

FieldOp = Literal[
    "eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "contains", "contains_any", "starts_with", "matches", "exists"
]


class FieldCond(_M):
    """`{field: order.amount, op: gt, value: 5000}`: a table-friendly comparison of one fact."""

    field: str
    op: FieldOp
    value: Any = None


class AllCond(_M):
    all: list[Condition] = Field(min_length=1)


class AnyCond(_M):
    any: list[Condition] = Field(min_length=1)


class NotCond(_M):
    not_: Condition = Field(alias="not")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ExprCond(_M):
    """`{expr: "order.amount > 5000 and customer.tier == 'vip'"}` for what a table cannot say."""

    expr: str = Field(min_length=1, max_length=1000)


# Tags are deliberately not valid YAML keys of a condition, so error locations can drop them (see loader).
COND_TAGS = frozenset({"field-condition", "all-of", "any-of", "not-of", "expression", "expression-text"})


def _cond_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "expression-text"
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True)
    if isinstance(value, dict):
        for key, tag in (("field", "field-condition"), ("all", "all-of"), ("any", "any-of"), ("not", "not-of"),
                         ("expr", "expression")):
            if key in value:
                return tag
    return None


Condition = Annotated[
    Annotated[str, Tag("expression-text")] | Annotated[FieldCond, Tag("field-condition")] | Annotated[AllCond, Tag("all-of")] | Annotated[AnyCond, Tag("any-of")] | Annotated[NotCond, Tag("not-of")] | Annotated[ExprCond, Tag("expression")],
    Discriminator(
        _cond_tag,
        custom_error_type="condition",
        custom_error_message="a condition needs one of the keys field, all, any, not or expr (or an expression string)",
    ),
]

AllCond.model_rebuild()
AnyCond.model_rebuild()
NotCond.model_rebuild()


# --- sections ---------------------------------------------------------------------------------------------------


class Region(_M):
    name_en: str = ""
    cities: list[str] = Field(min_length=1)
    default_base: str | None = None


class Calendar(_M):
    """Business time: working spans on working days, minus holidays, plus make-up working days (调休)."""

    timezone: str = "Asia/Shanghai"
    hours: list[Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")]] = Field(
        default_factory=lambda: ["09:00-18:00"], min_length=1
    )
    workdays: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat"], min_length=1)
    holidays: list[date] = Field(default_factory=list)
    extra_workdays: list[date] = Field(default_factory=list)
    official: Literal["china", "none"] = Field(
        default="china",
        description="merge China's official holidays and make-up workdays (the chinesecalendar package) with the "
                    "lists above; `none`: only the lists above",
    )


class ApprovalLevel(_M):
    role: Role
    region: str | None = Field(
        default=None, description="`order` = the order's region; a region name; or empty for no region"
    )
    escalate_after: Duration | None = None


class ApprovalRule(_M):
    id: Id
    kind: Literal["order", "refund"]
    description: LocalText | None = None
    when: Condition
    levels: list[ApprovalLevel] = Field(min_length=1)


class EscalationStep(_M):
    role: LadderRole
    after: Duration = timedelta(0)


class SlaLimit(_M):
    id: Id
    stage: Stage
    limit: Duration
    when: Condition | None = None
    business_time: bool = True
    warn_at: Fraction | None = None


def parse_short_duration(value: object) -> timedelta:
    """A duration that may also be in seconds (`30s`): grouping windows are Alertmanager's, which are that short."""
    if isinstance(value, str) and re.fullmatch(r"\d{1,6}s", value.strip()):
        return timedelta(seconds=int(value.strip()[:-1]))
    return parse_duration(value)


ShortDuration = Annotated[
    timedelta,
    BeforeValidator(parse_short_duration),
    PlainSerializer(lambda td: f"{int(td.total_seconds())}s", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+s|(\d+d)?(\d+h)?(\d+m)?)$", "examples": ["30s", "5m", "4h"]}),
]


class Grouping(_M):
    """Stall alerts for one recipient grouped into one card, with Alertmanager's meaning (engine/alert_groups.py)."""

    group_by: list[Literal["stage", "base", "region"]] = Field(default_factory=lambda: ["stage", "base", "region"])
    group_wait: ShortDuration = Field(default=timedelta(seconds=30), description="a new group waits this long for more")
    group_interval: ShortDuration = Field(default=timedelta(minutes=5),
                                          description="wait before showing alerts that joined")
    repeat_interval: ShortDuration | None = Field(default=None,
                                                  description="re-post a still-open group card; empty: never")

    @field_validator("group_by")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("group_by lists a label twice")
        return v

    @model_validator(mode="after")
    def _positive(self) -> "Grouping":
        if self.group_interval <= timedelta(0):
            raise ValueError("group_interval must be longer than zero")
        if self.repeat_interval is not None and self.repeat_interval < self.group_interval:
            raise ValueError("repeat_interval must not be shorter than group_interval")
        return self


class Sla(_M):
    calendar: str = "default"
    warn_at: Fraction = 0.8
    pause_stages: list[Stage] = Field(default_factory=list)
    pause_when: Condition | None = None
    escalation: list[EscalationStep] = Field(default_factory=list)
    limits: list[SlaLimit] = Field(default_factory=list)
    grouping: Grouping = Field(default_factory=Grouping)
    quiet_bypass_level: int | None = Field(
        default=2, ge=0, le=10,
        description="ladder level from which stall alerts ring through a user's quiet hours (0 = the breach, "
                    "1 = the supervisor rung, 2 = the region head); empty: none do",
    )


class ProductType(_M):
    name: LocalText
    sku_prefixes: list[str] = Field(default_factory=list)


class ProductionBase(_M):
    name: LocalText
    city: str
    coords: Coords
    makes: list[str] = Field(min_length=1)


class RoutingOverride(_M):
    id: Id
    when: Condition
    base: str


class Routing(_M):
    cities: dict[str, Coords] = Field(default_factory=dict)
    default_product_type: str | None = None
    use_stock: bool = True
    overrides: list[RoutingOverride] = Field(default_factory=list)
    # the production work-order number given when an order is confirmed: {base}, {date} (yyyymmdd, local) and
    # {seq} (the base's running number that day, from 1), e.g. HZ-20251111-0001
    work_order_format: str = Field(default="{base}-{date}-{seq:04d}", max_length=64)

    @field_validator("work_order_format")
    @classmethod
    def _work_order_format(cls, v: str) -> str:
        try:
            sample = work_order_no("HZ", date(2025, 11, 11), 1, v)
            other = work_order_no("HZ", date(2025, 11, 11), 2, v)
        except (KeyError, IndexError, ValueError, AttributeError) as e:
            raise ValueError(f"work_order_format: {{base}}, {{date}} and {{seq}} only ({type(e).__name__}: {e})"
                             ) from None
        if re.search(r"\{[^}]*[.\[]", v):
            raise ValueError("work_order_format: no attribute or index lookups in its fields")
        if sample == other or "{seq" not in v or "{base}" not in v or "{date}" not in v:
            raise ValueError("work_order_format must contain {base}, {date} and {seq}")
        if len(sample) > 48:
            raise ValueError("work_order_format makes numbers longer than 48 characters")
        return v


RefundAction = Literal["approve", "need_return_proof", "reject", "manual_review"]


class RefundRow(_M):
    id: Id
    when: Condition | None = None
    outcome: RefundAction
    message: LocalText | None = None


class Refunds(_M):
    matrix: list[RefundRow] = Field(default_factory=list)


class PriorityWeight(_M):
    id: Id
    when: Condition
    points: int


class Priority(_M):
    base: int = 0
    top_fraction: Fraction = 0.10
    weights: list[PriorityWeight] = Field(default_factory=list)


class AnomalyCategory(_M):
    name: Text
    keywords: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None


class Recipient(_M):
    role: LadderRole
    region: str | None = None


class Trend(_M):
    id: Id
    category: str = Field(default="any", description="a category id, or `any`")
    consecutive: Annotated[int, Field(ge=2)] | None = None
    count: Annotated[int, Field(ge=2)] | None = None
    window: Duration | None = None
    per: Literal["base", "carrier", "all"] = "all"
    notify: list[Recipient] = Field(min_length=1)


class Anomalies(_M):
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.6
    review_below: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.6, description="a note classified with less confidence than this (or not at all) goes to "
                                 "`review_role` with its top three categories as buttons; 0 turns it off")
    review_role: Literal["admin", "manager", "supply_chain"] = "supply_chain"
    categories: dict[str, AnomalyCategory] = Field(default_factory=dict)
    trends: list[Trend] = Field(default_factory=list)


class FieldLabel(_M):
    """How people call an item attribute or custom field: `width_cm: {name: 宽, unit: cm}`."""

    name: LocalText
    unit: str = ""


class OwnerPool(_M):
    """Users holding `role` who may work in the order's region (admins anywhere), one picked by `strategy`."""

    role: Role
    strategy: Literal["round_robin", "least_loaded"] = "round_robin"


class OwnerRule(_M):
    """Who owns an order entering `stage`: the first row whose stage and optional region/base/product match.

    `user`: a named user; `pool`: one of the users with a role (round-robin, or the one with fewest open orders)."""

    id: Id
    stage: Stage
    region: str | None = None
    base: str | None = None
    product: str | None = Field(default=None, description="a product type id the order contains")
    user: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    pool: OwnerPool | None = None


class RulesFile(_M):
    """The whole rules file (`orderhub rules schema` prints this as JSON Schema)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="OrderHub rules")

    version: Literal[1] = 1
    timezone: str = "Asia/Shanghai"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    regions: dict[str, Region] = Field(default_factory=dict)
    default_region: str | None = Field(
        default=None,
        description="the region of an order whose city is in no region; without it, such an order's approvals "
                    "for `region: order` go to the admins (never to any region's manager)",
    )
    calendars: dict[str, Calendar] = Field(default_factory=lambda: {"default": Calendar()})
    approvals: list[ApprovalRule] = Field(default_factory=list)
    sla: Sla = Field(default_factory=Sla)
    product_types: dict[str, ProductType] = Field(default_factory=dict)
    bases: dict[str, ProductionBase] = Field(default_factory=dict)
    routing: Routing = Field(default_factory=Routing)
    refunds: Refunds = Field(default_factory=Refunds)
    priority: Priority = Field(default_factory=Priority)
    anomalies: Anomalies = Field(default_factory=Anomalies)
    carriers: CarrierRules = Field(default_factory=CarrierRules)
    # Who owns an order in each stage (engine.rules.owners), applied when the order enters the stage.
    owners: list[OwnerRule] = Field(default_factory=list)
    # Display names of item attributes and custom fields on cards and customer replies (over built-in defaults).
    field_names: dict[str, FieldLabel] = Field(default_factory=dict)


def json_schema() -> dict[str, Any]:
    return RulesFile.model_json_schema(by_alias=True)
