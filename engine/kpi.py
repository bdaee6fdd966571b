"""The four KPIs (order accuracy, fulfilment cycle, manual intervention rate, availability) as plain arithmetic
over counts the storage layer aggregates."""

from __future__ import annotations

from dataclasses import dataclass

from engine.refunds import RefundKpi, RefundTiming, refund_kpi


@dataclass(frozen=True, slots=True)
class KpiInputs:
    orders: int  # orders created in the window
    manual_orders: int  # of those, orders that needed a human beyond routine stage moves
    completed: int  # orders completed in the window
    completed_clean: int  # of those, with no exception note, no refund and no complaint
    cycle_days_sum: float  # sum over completed orders of (completed_at - created_at) in days
    window_minutes: int  # minutes of the window the service was supposed to be up
    heartbeat_minutes: int  # minutes in which the health check answered
    refunds: tuple[RefundTiming, ...] = ()  # refunds requested in the window: request → decision


@dataclass(frozen=True, slots=True)
class Kpis:
    order_accuracy: float | None
    average_cycle_days: float | None
    manual_intervention_rate: float | None
    availability: float | None
    refunds: RefundKpi = RefundKpi(0, None, None, None)  # refund handling time (p50/p90) and share automatic

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "order_accuracy": self.order_accuracy,
            "average_fulfilment_cycle_days": self.average_cycle_days,
            "manual_intervention_rate": self.manual_intervention_rate,
            "availability": self.availability,
            **self.refunds.as_dict(),
        }


def _ratio(num: float, den: float) -> float | None:
    """None, not 0, when there is nothing to measure: 'no orders' is not '0 % accuracy'."""
    return round(num / den, 4) if den else None


def compute_kpis(i: KpiInputs) -> Kpis:
    return Kpis(
        order_accuracy=_ratio(i.completed_clean, i.completed),
        average_cycle_days=_ratio(i.cycle_days_sum, i.completed),
        manual_intervention_rate=_ratio(i.manual_orders, i.orders),
        availability=_ratio(min(i.heartbeat_minutes, i.window_minutes), i.window_minutes),
        refunds=refund_kpi(i.refunds),
    )
