"""``amlstream rules validate | publish | show``: rule sets for workers that keep running."""

import argparse
import asyncio
import sys
from pathlib import Path

import yaml

from agents.rules_feed import publish, read_latest
from agents.settings import Settings
from streams.ruleset import CompiledRules, RuleSetError, load_rules, missing_rule_sections


def _summary(rules: CompiledRules) -> str:
    enabled = [name for name, config in rules.config.rules if config.enabled]
    return (f"version {rules.version}: {len(enabled)} rules enabled, "
            f"{len(rules.config.jurisdiction_profiles.profiles)} jurisdiction profiles, "
            f"{len(rules.sanctioned)} sanctioned and {len(rules.mixers)} mixer addresses")


def _load(path: str) -> CompiledRules | None:
    try:
        return load_rules(Path(path))
    except RuleSetError as exc:
        message = str(exc)
        if not message.startswith("cannot read"):
            message = f"{path}: {message}"
        print(f"amlstream rules: {message}", file=sys.stderr)
        return None


def validate(args: argparse.Namespace) -> int:
    rules = _load(args.file)
    if rules is None:
        return 1
    document = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
    for name in missing_rule_sections(document):
        print(f"warning: {args.file}: rule {name} has no section under rules: it runs on its "
              "defaults (add the section to set them, or enabled: false)", file=sys.stderr)
    print(f"valid: {_summary(rules)}")
    return 0


def publish_file(args: argparse.Namespace) -> int:
    rules = _load(args.file)
    if rules is None:
        return 1
    settings = Settings()
    current = asyncio.run(read_latest(settings))
    if current is not None and current.version == rules.version:
        print(f"version {rules.version} is already published: give the new rule set a new "
              "version, so that alerts say which one produced them", file=sys.stderr)
        return 1
    asyncio.run(publish(settings, rules.config))
    print(f"published to {settings.rules_topic}: {_summary(rules)}")
    return 0


def show(args: argparse.Namespace) -> int:
    settings = Settings()
    current = asyncio.run(read_latest(settings))
    if current is None:
        print(f"no rule set on {settings.rules_topic}: workers use {settings.rules_path}")
        return 0
    print(f"# in force: {_summary(current)}")
    print(yaml.safe_dump(current.config.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rules = commands.add_parser("rules", help="validate, publish or show rule sets")
    actions = rules.add_subparsers(dest="rules_command", required=True)
    for name, handler, help_text in (
        ("validate", validate, "check a rule file (and its lists) without publishing"),
        ("publish", publish_file, "validate, then publish to the rules topic: workers apply it"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("file")
        action.set_defaults(handler=handler)
    actions.add_parser("show", help="print the rule set in force on the topic").set_defaults(
        handler=show)
