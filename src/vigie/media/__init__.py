"""Open and validate content safely: sniffing, limits, image and video decode, archives."""

from vigie.media.image import ImageHeader, decode_errors, image_header, load_rgb, open_checked, open_image
from vigie.media.inputs import iter_bytes, iter_file, iter_items, list_inputs, scan_inputs
from vigie.media.item import Item, ItemError
from vigie.media.sniff import is_image, is_video, sniff

__all__ = [
    "ImageHeader",
    "Item",
    "ItemError",
    "decode_errors",
    "image_header",
    "is_image",
    "is_video",
    "iter_bytes",
    "iter_file",
    "iter_items",
    "list_inputs",
    "load_rgb",
    "open_checked",
    "open_image",
    "scan_inputs",
    "sniff",
]
