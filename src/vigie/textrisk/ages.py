"""Ages and school years written in a text, in the twelve languages: the most direct minor indicator."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vigie.textrisk.lexicon import Lexicon

_UNITS = (
    r"y ?o|y o|yrs?(?: ?old)?|years?(?: ?old)?|yearold|yearsold|yr old|ans?|anos?|anni|anno"
    r"|jahre?n?|jahrig\w*|j|jaar|jarig\w*|lat|lata|letn\w*|latk\w*|лет\w*|года?|годик\w*|летн\w*|летк\w*|歳|才|岁|歲|살|세"
)
_MONTHS = r"months?(?: ?old)?|mois|meses|monate?n?|mesi|maanden|miesiec\w*|месяц\w*|ヶ月|か月|个月|個月|개월"
_NUM = r"(?<![\d.,])(\d{1,3})"
_AGE_AFTER = re.compile(rf"{_NUM}\s?(?:{_UNITS})(?![a-z])", re.IGNORECASE)
_MONTHS_AFTER = re.compile(rf"{_NUM}\s?(?:{_MONTHS})(?![a-z])")
_AGE_BEFORE = re.compile(
    r"(?<![a-z])(?:age|aged|ages|edad|alter|eta|idade|leeftijd|wiek|возраст\w*|年齢|年龄|나이)\s?(\d{1,2})(?!\d)"
)
_GRADE = re.compile(
    r"(?<![a-z\d])(?:(\d{1,2})(?:st|nd|rd|th) ?grade\w*|grade ?(\d{1,2})(?!\d)|(\d)(?:e|eme) annee"
    r"|(\d)(?:º|o)? ?(?:grado|ano|anno|klasse|klasa|класс\w*))"
)
_CJK_GRADE = re.compile(r"(?:小学|小學|初中|中学|中學|초등학교|중학교)\s?(\d|[一二三四五六])\s?(?:年|학년)")

_WORD_NUMBERS: dict[str, int] = {}
for _lang, _words in {
    "en": "one two three four five six seven eight"
    " nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen",
    "fr": "un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize dixsept",
    "es": "un dos tres cuatro cinco seis siete ocho"
    " nueve diez once doce trece catorce quince dieciseis diecisiete",
    "de": "ein zwei drei vier funf sechs sieben acht"
    " neun zehn elf zwolf dreizehn vierzehn funfzehn sechzehn siebzehn",
    "it": "un due tre quattro cinque sei sette otto"
    " nove dieci undici dodici tredici quattordici quindici sedici diciassette",
    "pt": "um dois tres quatro cinco seis sete oito"
    " nove dez onze doze treze catorze quinze dezesseis dezessete",
    "nl": "een twee drie vier vijf zes zeven acht"
    " negen tien elf twaalf dertien veertien vijftien zestien zeventien",
    "ru": "один два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать тринадцать"
    " четырнадцать пятнадцать шестнадцать семнадцать",
    "ko": "한 두 세 네 다섯 여섯 일곱 여덟 아홉 열 열한 열두 열세 열네 열다섯 열여섯 열일곱",
}.items():
    for _n, _w in enumerate(_words.split(), 1):
        _WORD_NUMBERS.setdefault(_w, _n)
_WORD_NUMBERS.update({"quatorce": 14, "dix sept": 17, "zwölf": 12, "dezasseis": 16, "dezassete": 17})
_WORD_AGE = re.compile(
    r"(?<![^\W_])(" + "|".join(sorted(map(re.escape, _WORD_NUMBERS), key=len, reverse=True)) + r")\s?"
    r"(?:year ?olds?|years? old|yo|ans|anos|anni|jahre?|jahrig\w*|jaar|jarig\w*|лет\w*|летн\w*|살)(?![^\W_])"
)
_CJK_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}
_CJK_AGE = re.compile(r"([一二三四五六七八九十]{1,3})\s?(?:歳|才|岁|歲|세)")


@dataclass(frozen=True)
class Age:
    years: int
    text: str
    kind: str  # "age" or "grade"


def _cjk_number(s: str) -> int:
    if "十" not in s:
        return _CJK_DIGITS.get(s[-1], 0)
    tens, _, ones = s.partition("十")
    return (_CJK_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CJK_DIGITS.get(ones, 0) if ones else 0)


def _about_an_object(canon: str, start: int, end: int, lexicon: Lexicon) -> bool:
    """ "12 year old whisky": the word after the age (or just before it) names a thing, not a person."""
    after = canon[end:].split()[:2]
    before = canon[:start].split()[-3:]
    for w in [*after, *before]:
        for t in lexicon.exact.get(w, ()):
            if t.category == "object":
                return True
    return False


def find_ages(canon: str, lexicon: Lexicon) -> list[Age]:
    """Ages of people (years; months count as 0) and school years (as the usual age) in canonical text."""
    out: list[Age] = []
    for rx in (_AGE_AFTER, _AGE_BEFORE):
        for m in rx.finditer(canon):
            if not _about_an_object(canon, m.start(), m.end(), lexicon):
                out.append(Age(int(m.group(1)), m.group(0).strip(), "age"))
    for m in _MONTHS_AFTER.finditer(canon):
        if not _about_an_object(canon, m.start(), m.end(), lexicon) and int(m.group(1)) < 48:
            out.append(Age(0, m.group(0).strip(), "age"))
    for m in _WORD_AGE.finditer(canon):
        if not _about_an_object(canon, m.start(), m.end(), lexicon):
            out.append(Age(_WORD_NUMBERS[m.group(1)], m.group(0).strip(), "age"))
    for m in _CJK_AGE.finditer(canon):
        out.append(Age(_cjk_number(m.group(1)), m.group(0), "age"))
    for m in _GRADE.finditer(canon):
        g = int(next(x for x in m.groups() if x))
        if 0 < g <= 12:
            out.append(Age(g + 5, m.group(0).strip(), "grade"))
    for m in _CJK_GRADE.finditer(canon):
        digits = m.group(1)
        n = int(digits) if digits.isdigit() else _CJK_DIGITS.get(digits, 1)
        base = 6 if m.group(0).startswith(("小", "초")) else 12
        out.append(Age(base + n - 1, m.group(0), "grade"))
    return out
