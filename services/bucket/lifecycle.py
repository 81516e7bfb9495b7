"""The bucket lifecycle rule for our prefix: colder storage after N days, expiry after M.

The rule is built and merged without I/O; `apply_rule` is the one round trip to the server.
Other rules on the bucket are kept; only the rule with our ID is replaced, so running the
command twice, or on a bucket shared with other tools, is safe.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.config import EnvReader
from services.common.settings import (LIFECYCLE_ABORT_MULTIPART_DAYS, LIFECYCLE_EXPIRE_DAYS,
                                      LIFECYCLE_TRANSITION_CLASS, LIFECYCLE_TRANSITION_DAYS)


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
        transition_days=env.get(LIFECYCLE_TRANSITION_DAYS),
        transition_class=env.get(LIFECYCLE_TRANSITION_CLASS).upper(),
        expire_days=env.get(LIFECYCLE_EXPIRE_DAYS),
        abort_multipart_days=env.get(LIFECYCLE_ABORT_MULTIPART_DAYS),
    )
    if policy.expire_days and policy.transition_days and policy.expire_days <= policy.transition_days:
        env.error(LIFECYCLE_EXPIRE_DAYS.name, "must be larger than LIFECYCLE_TRANSITION_DAYS (or 0 to keep forever)")
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


def current_rules(client: Any, bucket: str) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules; none when it has no lifecycle configuration."""
    try:
        return client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except Exception as exc:  # noqa: BLE001
        if "NoSuchLifecycleConfiguration" in str(exc):
            return []
        raise


def apply_rule(client: Any, bucket: str, rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Put our rule beside the bucket's others; returns the rules as the server reads them back
    (some drop parts they do not support). Errors are left to the caller."""
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": merge_rules(current_rules(client, bucket), rule)})
    return current_rules(client, bucket)
