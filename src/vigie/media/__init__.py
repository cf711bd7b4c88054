"""Open and validate content safely: sniffing, limits, image and video decode, archives."""

from vigie.media.image import decode_errors, load_rgb, open_image
from vigie.media.inputs import iter_bytes, iter_file, iter_items, list_inputs, scan_inputs
from vigie.media.item import Item, ItemError
from vigie.media.sniff import is_image, is_video, sniff

__all__ = [
    "Item",
    "ItemError",
    "decode_errors",
    "is_image",
    "is_video",
    "iter_bytes",
    "iter_file",
    "iter_items",
    "list_inputs",
    "load_rgb",
    "open_image",
    "scan_inputs",
    "sniff",
]
