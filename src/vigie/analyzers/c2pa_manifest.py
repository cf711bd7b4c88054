"""C2PA content credentials, read fully offline with c2pa-python (no remote manifests, no OCSP).

Reports the validation state (Invalid / Valid / Trusted), claim generator, actions with their IPTC
``digitalSourceType``, and ingredients. "Valid" means the signature checks out against its own certificate;
"Trusted" additionally means the signer chains to a trust anchor: the C2PA Trust List shipped with vigie, or
anchors the operator installed (``analyzers.c2pa_trust``). The finding names the anchors it was judged by.
"""

from __future__ import annotations

import io
import json
from typing import Any

from vigie.analyzers.base import Finding
from vigie.analyzers.provenance import DIGITAL_SOURCE_TYPES
from vigie.media.item import Item
from vigie.media.sniff import sniff

CONFIDENCE = {"Trusted": 0.95, "Valid": 0.8, "Invalid": 0.3}


def _settings(trust_anchors_pem: str) -> dict[str, Any]:
    verify = {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True}
    return {"verify": verify, "trust": {"trust_anchors": trust_anchors_pem}}


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    acts: list[dict[str, Any]] = []
    for a in manifest.get("assertions") or []:
        if isinstance(a, dict) and str(a.get("label", "")).startswith("c2pa.actions"):
            data = a.get("data") or {}
            acts += [x for x in data.get("actions") or [] if isinstance(x, dict)]
    return acts


class C2PAAnalyzer:
    """Content credentials: who signed the claim, what the actions say about how the image was made."""

    name = "c2pa"

    def __init__(self, trust_anchors_pem: str | None = None) -> None:
        """``trust_anchors_pem`` replaces the anchors in force (``c2pa_trust.resolve``), e.g. in tests."""
        self.trust_anchors_pem = trust_anchors_pem

    def _anchors(self) -> tuple[str, str]:
        if self.trust_anchors_pem is not None:
            return self.trust_anchors_pem, "given to the analyzer"
        from vigie.analyzers.c2pa_trust import resolve

        found = resolve()
        return found.pem, found.label

    def analyze(self, item: Item) -> list[Finding]:
        if b"c2pa" not in item.data:  # JUMBF manifest stores carry the c2pa label; a cheap pre-check
            return []
        import c2pa

        mime = item.media_type or sniff(item.data) or "image/jpeg"
        anchors, anchors_label = self._anchors()
        try:
            ctx = c2pa.Context(settings=c2pa.Settings.from_dict(_settings(anchors)))
            with c2pa.Reader(mime, io.BytesIO(item.data), context=ctx) as reader:
                store = json.loads(reader.json())
        except Exception as exc:  # no manifest, or one too broken to parse
            text = str(exc)
            if "ManifestNotFound" in text or "no JUMBF" in text.lower() or "NotFound" in text:
                return []
            return [
                Finding(
                    analyzer=self.name,
                    kind="c2pa_unreadable",
                    confidence=0.2,
                    summary="C2PA data present but unreadable",
                    evidence={"error": text[:300]},
                )
            ]
        manifests = store.get("manifests") or {}
        active = manifests.get(store.get("active_manifest") or "", {})
        state = store.get("validation_state") or ("Invalid" if store.get("validation_status") else "Valid")
        actions = _actions(active)
        codes = [str(s.get("code")) for s in store.get("validation_status") or [] if isinstance(s, dict)]
        dsts = [str(a.get("digitalSourceType")) for a in actions if a.get("digitalSourceType")]
        verdicts = [DIGITAL_SOURCE_TYPES.get(d.rsplit("/", 1)[-1], (None, 0.3)) for d in dsts]
        ai: bool | None = True if any(v[0] for v in verdicts) else (False if verdicts else None)
        generator = active.get("claim_generator") or next(
            (g.get("name") for g in active.get("claim_generator_info") or [] if isinstance(g, dict)), None
        )
        return [
            Finding(
                analyzer=self.name,
                kind="c2pa_manifest",
                confidence=CONFIDENCE.get(state, 0.3),
                ai_generated=ai,
                generator=str(generator) if generator else None,
                summary=f"C2PA {state}"
                + (" (signer not on the trust list)" if "signingCredential.untrusted" in codes else "")
                + (f": {dsts[0].rsplit('/', 1)[-1]}" if dsts else ""),
                evidence={
                    "validation_state": state,
                    "validation_status": codes[:20],
                    "trust_anchors": anchors_label,
                    "claim_generator": generator,
                    "title": active.get("title"),
                    "actions": [a.get("action") for a in actions][:50],
                    "digital_source_types": dsts,
                    "ingredients": [
                        i.get("title") for i in active.get("ingredients") or [] if isinstance(i, dict)
                    ][:50],
                    "signature_issuer": (active.get("signature_info") or {}).get("issuer"),
                },
            )
        ]
