"""What the three carrier clients share: one httpx client, retries of retryable failures, error classification.

Errors never carry the request (its form holds the checkword digest, the appkey digest, the customer's phone):
only the carrier, the endpoint's name and the HTTP status or the carrier's own code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from handlers.carriers import CarrierError

log = logging.getLogger("orderhub.carriers")


class CarrierHttp:
    def __init__(self, carrier: str, base_url: str, *, timeout_s: float = 10.0, attempts: int = 3,
                 backoff_s: float = 0.5, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.carrier, self.attempts, self.backoff_s = carrier, attempts, backoff_s
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport,
                                        headers={"User-Agent": "OrderHub"})

    async def aclose(self) -> None:
        await self.client.aclose()

    async def post_form(self, path: str, form: Mapping[str, str]) -> Any:
        """POST a form, answer parsed as JSON; retryable failures are retried `attempts` times with backoff."""
        last: CarrierError | None = None
        for attempt in range(self.attempts):
            try:
                return await self._once(path, form)
            except CarrierError as exc:
                if not exc.retryable:
                    raise
                last = exc
                log.warning("%s (attempt %d/%d)", exc, attempt + 1, self.attempts)
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(self.backoff_s * 2**attempt)
        assert last is not None
        raise last

    async def _once(self, path: str, form: Mapping[str, str]) -> Any:
        try:
            resp = await self.client.post(path, data=dict(form))
        except httpx.TimeoutException:
            raise CarrierError(self.carrier, f"{path}: timed out", retryable=True) from None
        except httpx.TransportError as exc:
            raise CarrierError(self.carrier, f"{path}: {type(exc).__name__}", retryable=True) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise CarrierError(self.carrier, f"{path}: HTTP {resp.status_code}", retryable=True)
        if resp.status_code >= 400:
            raise CarrierError(self.carrier, f"{path}: HTTP {resp.status_code}", retryable=False)
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise CarrierError(self.carrier, f"{path}: answer is not JSON", retryable=True) from None
