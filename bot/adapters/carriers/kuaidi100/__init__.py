"""Kuaidi100 (快递100) subscription and query client."""

from bot.adapters.carriers.kuaidi100.client import Kuaidi100Client

__all__ = ["Kuaidi100Client"]
