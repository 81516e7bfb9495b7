"""`lifecycle [--dry-run]`: show our rule, apply it, and read it back from the server."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from services.bucket.client import classify, make_client
from services.bucket.lifecycle import LifecyclePolicy, apply_rule, build_rule, describe, read_policy
from services.common.config import EnvReader
from services.uploader.config import UploaderConfig, read_uploader_config

NAME = "lifecycle"
HELP = "apply the bucket lifecycle rule (colder class, expiry)"
EXIT_CODES = {0: "the rule was applied and read back (--dry-run: shown)",
              1: "the server refused the rule or does not return it"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show the rule, change nothing")
    parser.add_argument("--json", action="store_true",
                        help="machine-readable output: the rule, its description and whether it was applied")


@dataclass(frozen=True)
class Settings:
    uploader: UploaderConfig
    policy: LifecyclePolicy


def read_settings(env: EnvReader) -> Settings:
    config = read_uploader_config(env)
    policy = read_policy(env, config.prefix)
    env.check()
    return Settings(config, policy)


def run(args: argparse.Namespace, settings: Settings) -> int:
    config, policy = settings.uploader, settings.policy
    rule = build_rule(policy)
    if args.dry_run and args.json:
        print(json.dumps(rule_data(rule, applied=False), indent=2))
        return 0
    if not args.json:
        print("\n".join(describe(rule)))
    if args.dry_run:
        print(json.dumps({"Rules": [rule]}, indent=2))
        print("dry run: nothing changed")
        return 0
    client = make_client(config)
    try:
        stored = {r.get("ID"): r for r in apply_rule(client, config.bucket, rule)}
    except Exception as exc:  # noqa: BLE001
        print(f"lifecycle: {classify(exc, 'applying the lifecycle rule')}")
        return 1
    ours = stored.get(rule["ID"])
    if ours is None:
        print("lifecycle: the server accepted the rule but does not return it")
        return 1
    warnings = [] if "AbortIncompleteMultipartUpload" in ours else [
        "the server dropped the abort-multipart part (MinIO does); the uploader aborts its own stale uploads at "
        "start instead"]
    if args.json:
        print(json.dumps({**rule_data(rule, applied=True), "stored": ours, "rules_on_bucket": len(stored),
                          "warnings": warnings}, indent=2))
        return 0
    for warning in warnings:
        print(f"lifecycle: warning: {warning}")
    print(f"applied to s3://{config.bucket} ({len(stored)} rules on the bucket)")
    return 0


def rule_data(rule: dict, applied: bool) -> dict:
    """`--json`: the rule as S3 takes it, in words, and whether this run applied it."""
    return {"rule": rule, "description": describe(rule), "applied": applied}
