"""Canonical text for matching: undo the cheap evasions (width, homoglyphs, accents, leet, separators, emoji).

Lexicon terms go through the same function, so a term matches whatever spelling reduces to the same
canonical form; the original text is never changed or stored by this module.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_CHARS = 20_000
"""Texts are cut to this many characters before analysis: prompts and captions are far shorter, and the
cost stays bounded on a 1 MB paste (the cut is reported in the explanation)."""

_INVISIBLE = dict.fromkeys(
    [
        *(
            0x00AD,
            0x034F,
            0x061C,
            0x115F,
            0x1160,
            0x17B4,
            0x17B5,
            0x180E,
            0x2060,
            0x2061,
            0x2062,
            0x2063,
            0x2064,
        ),
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        *(0xFEFF, 0x3164, 0xFFA0),
    ]
)
# Latin look-alikes in Cyrillic and Greek, applied only inside words that also hold Latin letters:
# a Russian word stays Russian, an English word spelt with a Cyrillic "а" becomes English again.
_HOMOGLYPHS = str.maketrans(
    dict(zip("аеорсухіјѕкмтнвԁɡαορειτκνυχβ", "aeopcyxijskmthbdgaopeitkvuxb", strict=True))
)
_LATIN = re.compile(r"[a-z]")
_MIXED_WORD = re.compile(r"[^\W\d_]*[a-z][^\W\d_]*|[^\W\d_]+")
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_LEET_TOKEN = re.compile(r"(?<![\w@$!])[a-z][a-z0-9@$!]*[0-9@$!][a-z0-9@$!]*[a-z][a-z0-9@$!]*(?![\w@$!])")
_SPACED = re.compile(r"(?<![^\W_])(?:[^\W\d_][\s._\-*·•|+~/\\]{1,3}){2,}[^\W\d_](?![^\W_])")
_INNER_PUNCT = re.compile(r"(?<=[^\W_])[.\-_*·•'’^~]+(?=[^\W_])")
_REPEATS = re.compile(r"([^\W\d_x])\1{2,}")  # "xxx" stays: it is a word of its own
_NON_WORD = re.compile(r"[^\w+]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")

EMOJI_WORDS = {
    "🔞": " nsfw ",
    "🍆": " lewd ",
    "💦": " lewd ",
    "👅": " lewd ",
    "🍑": " peach ",
    "👶": " baby ",
    "🧒": " child ",
    "👧": " girl ",
    "👦": " boy ",
    "🚸": " children ",
    "🏫": " school ",
    "🎒": " schoolbag ",
    "🩲": " underwear ",
    "👙": " bikini ",
    "🔥": " hot ",
    "😈": " naughty ",
}
_EMOJI = re.compile("|".join(map(re.escape, EMOJI_WORDS)))


def _strip_marks(text: str) -> str:
    """Accents off Latin, Greek and Cyrillic letters only: Japanese voicing marks are part of the letter."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) and out and out[-1] < "\u3000":
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _fix_word(m: re.Match[str]) -> str:
    w = m.group(0)
    return w.translate(_HOMOGLYPHS) if _LATIN.search(w) else w


def canonical(text: str) -> str:
    """The matching form of ``text``: lower case, plain letters, words separated by single spaces."""
    t = unicodedata.normalize("NFKC", text[:MAX_CHARS]).translate(_INVISIBLE)
    t = _EMOJI.sub(lambda m: EMOJI_WORDS[m.group(0)], t)
    t = t.casefold().replace("ß", "ss").replace("ł", "l").replace("ø", "o").replace("æ", "ae")
    t = _strip_marks(t)
    t = _MIXED_WORD.sub(_fix_word, t)
    t = _SPACED.sub(lambda m: re.sub(r"[\W_]", "", m.group(0)), t)
    t = _LEET_TOKEN.sub(lambda m: m.group(0).translate(_LEET), t)
    t = _INNER_PUNCT.sub("", t)
    t = _REPEATS.sub(r"\1", t)
    t = _NON_WORD.sub(" ", t)
    return f" {t.strip()} "


@lru_cache(maxsize=4096)
def canonical_term(term: str) -> str:
    """A lexicon term in matching form (a trailing ``*`` marks a prefix and is kept)."""
    star = term.endswith("*")
    core = canonical(term.rstrip("*")).strip()
    return core + ("*" if star else "")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))
