"""Which language a short text is in: by script first (cheap and certain), then py3langid for Latin text."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_HAN = re.compile(r"[\u3400-\u9fff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
LATIN_LANGS = ("en", "fr", "es", "de", "it", "pt", "nl", "pl")


@lru_cache(maxsize=1)
def _identifier() -> Any | None:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:  # optional: without it Latin-script text is reported as "und"
        return None
    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)  # npz, no pickle
    ident.set_languages(list(LATIN_LANGS))
    return ident


def detect_language(text: str) -> str:
    """An ISO 639-1 code among vigie's twelve languages, or ``und`` when the text gives no clue."""
    sample = text[:2000]
    if _HANGUL.search(sample):
        return "ko"
    if _KANA.search(sample):
        return "ja"
    if _HAN.search(sample):
        return "zh"
    cyr = len(_CYRILLIC.findall(sample))
    lat = len(_LATIN.findall(sample))
    if cyr > lat:
        return "ru"
    if lat < 2:
        return "und"
    ident = _identifier()
    if ident is None:
        return "und"
    lang, _prob = ident.classify(sample)
    return str(lang)
