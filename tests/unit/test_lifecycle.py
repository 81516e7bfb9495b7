import pytest

from services.bucket.lifecycle import build_rule, describe, merge_rules, read_policy
from services.common.config import ConfigError, EnvReader


def policy(**values):
    env = EnvReader(values)
    result = read_policy(env, "site-a/")
    env.check()
    return result


def test_default_rule():
    rule = build_rule(policy())
    assert rule["Filter"] == {"Prefix": "site-a/"} and rule["Status"] == "Enabled"
    assert rule["Transitions"] == [{"Days": 30, "StorageClass": "GLACIER_IR"}]
    assert rule["Expiration"] == {"Days": 365}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_keep_forever_without_transition():
    rule = build_rule(policy(LIFECYCLE_TRANSITION_DAYS="0", LIFECYCLE_EXPIRE_DAYS="0"))
    assert "Transitions" not in rule and "Expiration" not in rule
    assert "never delete" in "\n".join(describe(rule))


def test_expiry_must_follow_transition():
    with pytest.raises(ConfigError, match="LIFECYCLE_EXPIRE_DAYS"):
        policy(LIFECYCLE_TRANSITION_DAYS="90", LIFECYCLE_EXPIRE_DAYS="30")


def test_merge_keeps_other_rules_and_replaces_ours():
    ours = build_rule(policy())
    other = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 7}}
    stale = dict(ours, Expiration={"Days": 5})
    assert merge_rules([other, stale], ours) == [other, ours]

