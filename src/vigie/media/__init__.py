"""Open and validate content safely: sniffing, limits, image and video decode, archives."""

from vigie.media.item import Item, ItemError

__all__ = ["Item", "ItemError"]
