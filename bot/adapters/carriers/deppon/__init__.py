"""Deppon (德邦开放平台) client."""

from bot.adapters.carriers.deppon.client import DepponClient

__all__ = ["DepponClient"]
