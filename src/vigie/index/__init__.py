"""Exact search structures: :class:`PDQIndex` (Hamming radius search over PDQ codes) and :class:`ExactIndex`
(exact lookup of fixed-width values such as md5/sha1/sha256), with incremental add/remove and save/load of a
directory of .npy files plus a JSON manifest (no pickle)."""

from vigie.index.exact import ExactIndex
from vigie.index.pdq import PDQIndex

__all__ = ["ExactIndex", "PDQIndex"]
