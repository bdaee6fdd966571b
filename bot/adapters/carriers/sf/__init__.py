"""SF Express (顺丰) 丰桥 standard API client."""

from bot.adapters.carriers.sf.client import SfClient

__all__ = ["SfClient"]
