"""Policy: declarative rules (YAML) that turn matches and findings into a decision."""

from vigie.policy.engine import Decision, Policy, load_policy

__all__ = ["Decision", "Policy", "load_policy"]
