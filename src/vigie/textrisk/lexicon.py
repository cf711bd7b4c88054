"""Versioned term lists (data/lexicon/*.txt) loaded into a fast longest-match lookup over canonical text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from vigie.errors import VigieError
from vigie.textrisk.normalize import canonical_term, has_cjk

LANGUAGES = ("en", "fr", "es", "de", "it", "pt", "nl", "pl", "ru", "ja", "zh", "ko")
CATEGORIES = frozenset(
    {
        "minor",
        "minor_weak",
        "sexual",
        "sexual_med",
        "sexual_weak",
        "csam",
        "topic",
        "frame",
        "adult",
        "adult_push",
        "clothing",
        "object",
        "media",
    }
)
VERSION_RE = re.compile(r"[Vv]ersion (\d{4}\.\d+\.\d+)")
_MAX_CJK_TERM = 12


@dataclass(frozen=True)
class Term:
    """A lexicon entry: what it indicates, its file's language, and whether it counts only in that one."""

    category: str
    text: str
    lang: str
    strict: bool = False

    def counts_for(self, lang: str | None) -> bool:
        return not self.strict or lang == self.lang


@dataclass(frozen=True)
class Hit:
    """A term found in a text, at token position ``pos`` (CJK hits count characters inside a token)."""

    term: Term
    pos: int


@dataclass
class Lexicon:
    """All languages' terms; matching runs every language at once so mixed-language text is covered."""

    exact: dict[str, list[Term]] = field(default_factory=dict)
    prefix: dict[str, list[Term]] = field(default_factory=dict)
    max_words: int = 1
    version: str = "unversioned"

    def add(self, term: Term, raw: str) -> None:
        key = canonical_term(raw)
        if not key.strip("*"):
            return
        table = self.prefix if key.endswith("*") else self.exact
        key = key.rstrip("*")
        table.setdefault(key, []).append(term)
        self.max_words = max(self.max_words, key.count(" ") + 1)

    def find(self, canon: str) -> list[Hit]:
        """Every term in canonical text, longest match first; words covered by a match are not re-read."""
        tokens = canon.split()
        hits: list[Hit] = []
        i = 0
        while i < len(tokens):
            step = self._match_at(tokens, i, hits)
            if step:
                i += step
                continue
            if has_cjk(tokens[i]):
                self._scan_cjk(tokens[i], i, hits)
            i += 1
        return hits

    def _match_at(self, tokens: list[str], i: int, hits: list[Hit]) -> int:
        for n in range(min(self.max_words, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + n])
            terms = self.exact.get(phrase)
            if terms is None:
                terms = self._prefix_terms(phrase)
            if terms:
                hits.extend(Hit(t, i) for t in terms)
                return n
        return 0

    def _prefix_terms(self, phrase: str) -> list[Term] | None:
        """Prefix terms covering every word of ``phrase`` and the start of its last word."""
        for end in range(len(phrase), max(phrase.rfind(" ") + 1, 1), -1):
            terms = self.prefix.get(phrase[:end])
            if terms is not None:
                return terms
        return None

    def _scan_cjk(self, token: str, pos: int, hits: list[Hit]) -> None:
        j = 0
        while j < len(token):
            for n in range(min(_MAX_CJK_TERM, len(token) - j), 0, -1):
                terms = self.exact.get(token[j : j + n])
                if terms and has_cjk(token[j : j + n]):
                    hits.extend(Hit(t, pos) for t in terms)
                    j += n
                    break
            else:
                j += 1


def parse_lexicon(text: str, lang: str, lexicon: Lexicon, source: str = "") -> None:
    """Read one file's ``category: term, term`` lines into ``lexicon``; a bad line is a clear error."""
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            if m := VERSION_RE.search(line):
                lexicon.version = m.group(1)
            continue
        head, sep, body = line.partition(":")
        strict = head.endswith("!")
        category = head.rstrip("!").strip()
        if not sep or category not in CATEGORIES:
            raise VigieError(
                f"{source}:{n}: expected 'category: term, term', category one of {sorted(CATEGORIES)}"
            )
        for raw in body.split(","):
            if raw.strip():
                lexicon.add(
                    Term(category, canonical_term(raw.strip()).rstrip("*"), lang, strict), raw.strip()
                )


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The lexicons shipped with vigie (loaded once per process)."""
    lex = Lexicon()
    root = resources.files("vigie.textrisk") / "data" / "lexicon"
    for lang in (*LANGUAGES, "codewords"):
        path = root / f"{lang}.txt"
        parse_lexicon(path.read_text(encoding="utf-8"), lang if lang != "codewords" else "*", lex, path.name)
    return lex
