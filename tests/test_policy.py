"""Policy rules exercised with benign proxy evidence (bank names and labels stand in for real categories)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigie.errors import ConfigError
from vigie.policy import Policy, load_policy

EXACT = {
    "bank": "known",
    "bank_kind": "match",
    "signal": "md5",
    "distance": 0,
    "entry_id": "1",
    "labels": {"category": "A1"},
}
NEAR = {
    "bank": "known",
    "bank_kind": "match",
    "signal": "pdq",
    "distance": 12,
    "entry_id": "2",
    "labels": {"category": "B2"},
}
AI = {
    "analyzer": "generator_metadata",
    "kind": "generator_metadata",
    "ai_generated": True,
    "confidence": 0.9,
    "generator": "ComfyUI",
}
WEAK = {
    "analyzer": "synthetic_detector",
    "kind": "synthetic_detector_score",
    "ai_generated": True,
    "confidence": 0.6,
}


def test_default_policy() -> None:
    p = load_policy()
    assert p.decide([], []).action == "allow"
    d = p.decide([EXACT, NEAR], [AI])
    assert (d.action, d.priority) == ("block", 100)
    assert d.labels == ["known-material", "known-material-near", "ai-generated"]
    assert [r["rule"] for r in d.reasons] == [
        "known-material-exact",
        "known-material-near",
        "ai-generation-evidence",
    ]
    assert d.reasons[0]["evidence"] == [EXACT]
    assert p.decide([NEAR], []).action == "review"
    assert p.decide([], [WEAK]).action == "allow", "a weak classifier score alone never decides"


def test_combinators_labels_and_shadow_mode(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        """
version: 1
mode: shadow
rules:
  - name: proxy-category
    when: {all: [{match: {labels: {category: B2}, max_distance: 20}}, {not: {finding: {analyzer: c2pa}}}]}
    action: block
    priority: 70
    labels: [proxy]
  - name: either
    when: {any: [{match: {bank: other}}, {finding: {generator: ComfyUI, min_confidence: 0.5}}]}
    action: review
"""
    )
    p = load_policy(f)
    d = p.decide([NEAR], [AI])
    assert d.shadow and d.action == "allow" and d.shadow_action == "block"
    assert [r["rule"] for r in d.reasons] == ["proxy-category", "either"] and d.labels == ["proxy"]
    assert p.decide([EXACT], []).shadow_action == "allow"


@pytest.mark.parametrize(
    "doc",
    [
        {"rules": []},
        {"version": 1, "mode": "loud"},
        {"version": 1, "rules": [{"name": "x", "action": "delete", "when": {"match": {}}}]},
        {"version": 1, "rules": [{"name": "x", "action": "block", "when": {"match": {"colour": "red"}}}]},
        {"version": 1, "rules": [{"name": "x", "action": "block", "when": {"maybe": {}}}]},
        {"version": 1, "rules": [{"name": "x", "action": "block", "when": {"all": []}}]},
        # found by fuzzing the shipped policy's text: each was a TypeError or ValueError traceback
        {"version": 1, "rules": [{"name": "x", "action": "block", "when": {"match": {}}, "priority": "9x"}]},
        {"version": 1, "rules": [{"name": "x", "action": "block", "when": {"match": {}}, "priority": None}]},
        {"version": 1, "rules": [{"name": "x", "action": "block", "when": {"match": {}}, "labels": 3}]},
        {"version": 1, "rules": {"name": "x"}},
    ],
)
def test_invalid_policies_are_refused_with_where(doc: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError):
        Policy.from_dict(doc, "test")


def test_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("version: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(tmp_path / "bad.yaml")
