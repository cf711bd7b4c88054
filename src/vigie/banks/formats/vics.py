"""Project VIC VICS 2.0 (OData JSON): ``value`` holds cases with ``Media`` lists (or Media entries directly).

Each Media entry gives md5 (``MD5``), sha1 (``SHA1``) and ``AlternativeHashes`` (SHA256, PDQ) entries that
share its ``MediaID`` as external id; Category, Series and VictimIdentified travel as labels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

from vigie import __version__
from vigie.banks.model import EntryIn, EntryOut, long_labels
from vigie.errors import ImportFormatError, LineError, SignalError
from vigie.signals.types import signal_type

METADATA = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Cases"
_ALT = {"sha256": "sha256", "pdq": "pdq", "md5": "md5", "sha1": "sha1"}


def _media_list(doc: Any) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        raise ValueError("expected an object with a 'value' list (VICS 2.0 OData JSON)")
    media: list[Any] = []
    for item in doc["value"]:
        if isinstance(item, dict) and isinstance(item.get("Media"), list):
            media.extend(item["Media"])
        else:
            media.append(item)
    return media


def parse(fh: IO[str], source: str = "") -> list[EntryIn]:
    try:
        media = _media_list(json.load(fh))
    except (json.JSONDecodeError, ValueError) as exc:
        raise ImportFormatError([LineError(getattr(exc, "lineno", 0), str(exc))], source) from None
    except RecursionError:  # brackets nested thousands deep: no VICS document is
        raise ImportFormatError([LineError(0, "JSON nested too deeply")], source) from None
    out: list[EntryIn] = []
    errors: list[LineError] = []
    for n, m in enumerate(media, 1):
        if not isinstance(m, dict):
            errors.append(LineError(n, f"Media #{n} is not an object"))
            continue
        category = m.get("Category")
        labels: dict[str, Any] = {
            "category": None if category is None else str(category),
            "external_id": None if m.get("MediaID") is None else str(m["MediaID"]),
            "source": "vics",
        }
        extra = {
            k: m[k]
            for k in ("Series", "VictimIdentified", "IsPrecategorized", "RelativeFilePath", "Tags")
            if m.get(k) not in (None, "")
        }
        pairs: list[tuple[str, str]] = []
        for key, st in (("MD5", "md5"), ("SHA1", "sha1")):
            if m.get(key):
                pairs.append((st, str(m[key])))
        alts = m.get("AlternativeHashes") or []
        if not isinstance(alts, list):
            errors.append(LineError(n, f"Media #{n}: AlternativeHashes is not a list"))
            continue
        for alt in alts:
            if (
                isinstance(alt, dict)
                and str(alt.get("HashName", "")).lower() in _ALT
                and alt.get("HashValue")
            ):
                pairs.append((_ALT[str(alt["HashName"]).lower()], str(alt["HashValue"])))
        if not pairs:
            errors.append(LineError(n, f"Media #{n} has no MD5, SHA1 or alternative hash"))
            continue
        got: list[EntryIn] = []
        try:
            for st_name, value in pairs:
                kind = signal_type(st_name)
                got.append(
                    EntryIn(signal_type=kind.name, value=kind.normalize(value), extra=extra or None, **labels)
                )
        except SignalError as exc:
            errors.append(LineError(n, f"Media #{n}: {exc}"))
            continue
        if why := long_labels(got[0]):
            errors.append(LineError(n, f"Media #{n}: {why}"))
            continue
        out.extend(got)
    if errors:
        raise ImportFormatError(errors, source)
    return out


def write(entries: Iterable[EntryOut], fh: IO[str]) -> int:
    """One Media per external id (or per entry without one); returns the number of entries written."""
    groups: dict[str, dict[str, Any]] = {}
    n = 0
    for e in entries:
        key = e.external_id or f"entry-{e.id}"
        m = groups.setdefault(key, {"MediaID": len(groups) + 1, "AlternativeHashes": []})
        if e.external_id and e.external_id.isdigit():
            m["MediaID"] = int(e.external_id)
        if e.category is not None:
            m["Category"] = int(e.category) if e.category.isdigit() else e.category
        for k, v in (e.extra or {}).items():
            if k in ("Series", "VictimIdentified", "IsPrecategorized", "RelativeFilePath", "Tags"):
                m[k] = v
        if e.signal_type in ("md5", "sha1"):
            m[e.signal_type.upper()] = e.value.upper()
        else:
            m["AlternativeHashes"].append({"HashName": e.signal_type.upper(), "HashValue": e.value})
        n += 1
    doc = {
        "odata.metadata": METADATA,
        "value": [
            {
                "CaseID": 1,
                "SourceApplicationName": "vigie",
                "SourceApplicationVersion": __version__,
                "Media": list(groups.values()),
            }
        ],
    }
    json.dump(doc, fh, indent=1)
    fh.write("\n")
    return n
