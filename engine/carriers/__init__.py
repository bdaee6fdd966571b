"""Carriers, pure: neutral tracking statuses, each carrier's signature arithmetic and push/route parsing,
waybill number patterns, the carrier rules, and carrier-performance figures. No I/O, no clock."""

from engine.carriers.model import CARRIERS, TrackEvent, TrackStatus, event_key

__all__ = ["CARRIERS", "TrackEvent", "TrackStatus", "event_key"]
