"""The `carriers:` section of the rules file: which carrier ships where, the backup, stalls, degradation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CarrierId = Literal["sf", "deppon", "kuaidi100"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CarrierChoice(_M):
    primary: CarrierId
    backup: CarrierId | None = None


class Degradation(_M):
    """A carrier × region whose 7-day transit p50 or p90 exceeds its 30-day baseline by `ratio` is degraded."""

    ratio: Annotated[float, Field(gt=1)] = 1.5
    min_samples: Annotated[int, Field(ge=1)] = 5  # deliveries needed in each window before judging
    notify_role: Literal["supply_chain", "admin", "manager"] = "supply_chain"


class CarrierRules(_M):
    default: CarrierChoice = CarrierChoice(primary="sf", backup="deppon")
    regions: dict[str, CarrierChoice] = Field(default_factory=dict)
    stall_after_pickup_hours: Annotated[int, Field(ge=1, le=720)] = 48
    degradation: Degradation = Field(default_factory=Degradation)

    def choice(self, region: str | None) -> CarrierChoice:
        return self.regions.get(region or "", self.default)

    def order_of_carriers(self, region: str | None) -> list[str]:
        """The carriers to try for a region, first choice first."""
        c = self.choice(region)
        return [c.primary] + ([c.backup] if c.backup and c.backup != c.primary else [])
