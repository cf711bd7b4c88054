"""Evaluate a declarative policy over one item's matches and findings.

Conditions: ``match`` (filters: bank, bank_kind, signal, max_distance, labels), ``finding`` (filters:
analyzer, kind, ai_generated, generator, min_confidence), and ``all`` / ``any`` / ``not`` to combine them.
A rule's reasons are exactly the matches and findings that satisfied it: a decision says what it rests on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vigie.errors import ConfigError

ACTIONS = {"allow": 0, "review": 1, "block": 2}
_MATCH_KEYS = {"bank", "bank_kind", "signal", "max_distance", "labels"}
_FINDING_KEYS = {"analyzer", "kind", "ai_generated", "generator", "min_confidence"}


@dataclass
class Decision:
    """What to do with an item, how urgently, and the evidence each fired rule rested on."""

    action: str = "allow"
    priority: int = 0
    labels: list[str] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    shadow: bool = False
    shadow_action: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _check_condition(cond: Any, where: str) -> None:
    if not isinstance(cond, dict) or len(cond) != 1:
        raise ConfigError(f"{where}: a condition is one of match/finding/all/any/not, got {cond!r}")
    ((op, arg),) = cond.items()
    if op in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise ConfigError(f"{where}: '{op}' takes a non-empty list of conditions")
        for i, c in enumerate(arg):
            _check_condition(c, f"{where}.{op}[{i}]")
    elif op == "not":
        _check_condition(arg, f"{where}.not")
    elif op in ("match", "finding"):
        allowed = _MATCH_KEYS if op == "match" else _FINDING_KEYS
        if not isinstance(arg, dict) or not set(arg) <= allowed:
            raise ConfigError(f"{where}: '{op}' filters are {', '.join(sorted(allowed))}")
    else:
        raise ConfigError(f"{where}: unknown condition '{op}'")


def _match_ok(f: dict[str, Any], m: dict[str, Any]) -> bool:
    if "bank" in f and m.get("bank") not in _as_list(f["bank"]):
        return False
    if "bank_kind" in f and m.get("bank_kind", "match") not in _as_list(f["bank_kind"]):
        return False
    if "signal" in f and m.get("signal") not in _as_list(f["signal"]):
        return False
    if "max_distance" in f and int(m.get("distance", 0)) > int(f["max_distance"]):
        return False
    labels = m.get("labels") or {}
    return all(str(labels.get(k)) in map(str, _as_list(v)) for k, v in (f.get("labels") or {}).items())


def _finding_ok(f: dict[str, Any], x: dict[str, Any]) -> bool:
    for key in ("analyzer", "kind", "generator"):
        if key in f and x.get(key) not in _as_list(f[key]):
            return False
    if "ai_generated" in f and x.get("ai_generated") is not f["ai_generated"]:
        return False
    return float(x.get("confidence", 0.0)) >= float(f.get("min_confidence", 0.0))


def _evaluate(
    cond: dict[str, Any], matches: list[dict[str, Any]], findings: list[dict[str, Any]]
) -> list[Any] | None:
    """The evidence that satisfies ``cond`` (possibly empty for 'not'), or None when it does not hold."""
    ((op, arg),) = cond.items()
    if op == "match":
        hits = [m for m in matches if _match_ok(arg, m)]
        return hits or None
    if op == "finding":
        hits = [x for x in findings if _finding_ok(arg, x)]
        return hits or None
    if op == "all":
        out: list[Any] = []
        for c in arg:
            r = _evaluate(c, matches, findings)
            if r is None:
                return None
            out += r
        return out
    if op == "any":
        results = [r for c in arg if (r := _evaluate(c, matches, findings)) is not None]
        return [e for r in results for e in r] if results else None
    return [] if _evaluate(arg, matches, findings) is None else None  # not


@dataclass
class Rule:
    name: str
    when: dict[str, Any]
    action: str
    priority: int = 0
    labels: list[str] = field(default_factory=list)
    description: str = ""


@dataclass
class Policy:
    """Rules, a default action, and a mode (``enforce`` or ``shadow``)."""

    rules: list[Rule]
    default: str = "allow"
    mode: str = "enforce"
    source: str = "default"

    def decide(self, matches: list[dict[str, Any]], findings: list[dict[str, Any]]) -> Decision:
        fired: list[tuple[Rule, list[Any]]] = []
        for rule in self.rules:
            evidence = _evaluate(rule.when, matches, findings)
            if evidence is not None:
                fired.append((rule, evidence))
        d = Decision(action=self.default)
        for rule, evidence in fired:
            if ACTIONS[rule.action] > ACTIONS[d.action]:
                d.action = rule.action
            d.priority = max(d.priority, rule.priority)
            d.labels += [lb for lb in rule.labels if lb not in d.labels]
            d.reasons.append({"rule": rule.name, "action": rule.action, "evidence": evidence})
        if self.mode == "shadow":
            d.shadow, d.shadow_action, d.action = True, d.action, "allow"
        return d

    @classmethod
    def from_dict(cls, doc: Any, source: str = "policy") -> Policy:
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ConfigError(f"{source}: a policy is a mapping with 'version: 1'")
        mode, default = doc.get("mode", "enforce"), doc.get("default", "allow")
        if mode not in ("enforce", "shadow") or default not in ACTIONS:
            raise ConfigError(f"{source}: mode is enforce|shadow and default one of {', '.join(ACTIONS)}")
        rules = []
        if not isinstance(doc.get("rules") or [], list):
            raise ConfigError(f"{source}: 'rules' is a list of rules")
        for i, r in enumerate(doc.get("rules") or []):
            where = f"{source}: rules[{i}]"
            if not isinstance(r, dict) or not r.get("name") or r.get("action") not in ACTIONS:
                raise ConfigError(f"{where}: each rule needs a name and an action ({', '.join(ACTIONS)})")
            _check_condition(r.get("when"), where)
            priority, labels = r.get("priority", 0), r.get("labels") or []
            if not isinstance(priority, int) or isinstance(priority, bool):  # found by fuzzing: a traceback
                raise ConfigError(f"{where}: priority is a whole number, not {priority!r}")
            if not isinstance(labels, list):
                raise ConfigError(f"{where}: labels is a list, not {labels!r}")
            rules.append(
                Rule(
                    name=str(r["name"]),
                    when=r["when"],
                    action=r["action"],
                    priority=priority,
                    labels=[str(x) for x in labels],
                    description=str(r.get("description", "")),
                )
            )
        return cls(rules=rules, default=default, mode=mode, source=source)


def load_policy(path: Path | None = None) -> Policy:
    """A policy file (YAML), or the shipped default."""
    if path is None:
        text, source = (
            resources.files("vigie.policy").joinpath("default.yaml").read_text("utf-8"),
            "default policy",
        )
    else:
        try:
            text, source = path.read_text("utf-8"), str(path)
        except OSError as exc:
            raise ConfigError(f"cannot read policy {path}: {exc}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    return Policy.from_dict(doc, source)
