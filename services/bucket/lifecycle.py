"""The bucket lifecycle rule for our prefix (pure): colder storage after N days, expiry after M.

Other rules on the bucket are kept; only the rule with our ID is replaced, so running the
command twice, or on a bucket shared with other tools, is safe.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.config import EnvReader

TRANSITION_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")


@dataclass(frozen=True)
class LifecyclePolicy:
    prefix: str
    transition_days: int          # 0 = no transition
    transition_class: str
    expire_days: int              # 0 = keep forever
    abort_multipart_days: int

    @property
    def rule_id(self) -> str:
        return f"video-recorder:{self.prefix or '(whole bucket)'}"


def read_policy(env: EnvReader, prefix: str) -> LifecyclePolicy:
    policy = LifecyclePolicy(
        prefix=prefix,
        transition_days=env.integer("LIFECYCLE_TRANSITION_DAYS", 30, minimum=0, maximum=36500),
        transition_class=env.choice("LIFECYCLE_TRANSITION_CLASS", "glacier_ir",
                                    [c.lower() for c in TRANSITION_CLASSES]).upper(),
        expire_days=env.integer("LIFECYCLE_EXPIRE_DAYS", 365, minimum=0, maximum=36500),
        abort_multipart_days=env.integer("LIFECYCLE_ABORT_MULTIPART_DAYS", 1, minimum=1, maximum=365),
    )
    if policy.expire_days and policy.transition_days and policy.expire_days <= policy.transition_days:
        env.error("LIFECYCLE_EXPIRE_DAYS", "must be larger than LIFECYCLE_TRANSITION_DAYS (or 0 to keep forever)")
    return policy


def build_rule(policy: LifecyclePolicy) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "ID": policy.rule_id,
        "Filter": {"Prefix": policy.prefix},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": policy.abort_multipart_days},
    }
    if policy.transition_days:
        rule["Transitions"] = [{"Days": policy.transition_days, "StorageClass": policy.transition_class}]
    if policy.expire_days:
        rule["Expiration"] = {"Days": policy.expire_days}
    return rule


def merge_rules(existing: list[dict[str, Any]], rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Existing rules with ours replaced (or added)."""
    return [r for r in existing if r.get("ID") != rule["ID"]] + [rule]


def describe(rule: dict[str, Any]) -> list[str]:
    prefix = rule["Filter"]["Prefix"] or "the whole bucket"
    lines = [f"rule {rule['ID']} on {prefix}:"]
    for transition in rule.get("Transitions", []):
        lines.append(f"  after {transition['Days']} days: move to {transition['StorageClass']}")
    if "Expiration" in rule:
        lines.append(f"  after {rule['Expiration']['Days']} days: delete")
    else:
        lines.append("  never delete")
    lines.append(f"  abort unfinished multipart uploads after {rule['AbortIncompleteMultipartUpload']['DaysAfterInitiation']} days")
    return lines
