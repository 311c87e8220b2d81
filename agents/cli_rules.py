"""``amlstream rules validate | publish | show | history``: rule sets for workers that keep
running, and every version ever published."""

import asyncio
import sys
from pathlib import Path

import click
import yaml

from agents.cli_common import (
    Arg,
    Group,
    UserError,
    broker_option,
    kafka_settings,
    rule_file_problem,
)
from agents.rules_feed import VersionConflictError, publish, read_history, read_latest
from agents.settings import Settings
from streams.ruleset import CompiledRules, RuleSetError, load_rules, missing_rule_sections


def _summary(rules: CompiledRules) -> str:
    enabled = [name for name, config in rules.config.rules if config.enabled]
    return (f"version {rules.version}: {len(enabled)} rules enabled, "
            f"{len(rules.config.jurisdiction_profiles.profiles)} jurisdiction profiles, "
            f"{len(rules.sanctioned)} sanctioned and {len(rules.mixers)} mixer addresses")


def _load(path: Path) -> CompiledRules | None:
    """The rule file compiled as a worker would once it is published: its list files read
    relative to the folder of the worker's own rule file (AMLSTREAM_RULES_PATH), whatever
    folder this file is in."""
    try:
        return load_rules(path, lists_dir=Settings().rules_path.resolve().parent)
    except RuleSetError as exc:
        print(f"amlstream rules: {rule_file_problem(path, exc)}", file=sys.stderr)
        return None


@click.group(cls=Group, short_help="Validate, publish or show rule sets.",
             help="Validate a rule file, publish it to the rules topic (running workers apply "
             "it), or show the rule set in force.")
def rules() -> None:
    pass


@rules.command(short_help="Check a rule file (and its lists) without publishing.",
               help="Check a rule file and the list files it names, without publishing: "
               "every problem named (a YAML error by line, the nearest setting for a typo), "
               "and a warning for a rule with no section. List files are looked for where the "
               "workers look: relative to the folder of AMLSTREAM_RULES_PATH. Exit 1 if it is "
               "invalid.")
@click.argument("file", cls=Arg, type=click.Path(path_type=Path), help="The rule file (YAML).")
def validate(file: Path) -> int:
    compiled = _load(file)
    if compiled is None:
        return 1
    document = yaml.safe_load(file.read_text(encoding="utf-8"))
    for name in missing_rule_sections(document):
        print(f"warning: {file}: rule {name} has no section under rules: it runs on its "
              "defaults (add the section to set them, or enabled: false)", file=sys.stderr)
    print(f"valid: {_summary(compiled)}")
    return 0


@rules.command("publish", short_help="Validate, then publish to the rules topic.",
               help="Validate a rule file, then publish it to the rules topic: running workers "
               "apply it. A version already in force is refused (exit 1), as is an invalid "
               "file.")
@click.argument("file", cls=Arg, type=click.Path(path_type=Path),
                help="The rule file (YAML) to publish.")
@broker_option
def publish_file(file: Path) -> int:
    compiled = _load(file)
    if compiled is None:
        return 1
    settings = kafka_settings()
    current = asyncio.run(read_latest(settings))
    if current is not None and current.version == compiled.version:
        print(f"version {compiled.version} is already published: give the new rule set a new "
              "version, so that alerts say which one produced them", file=sys.stderr)
        return 1
    try:
        asyncio.run(publish(settings, compiled.config))
    except VersionConflictError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"published to {settings.rules_topic}: {_summary(compiled)}")
    return 0


@rules.command(short_help="List every rule set ever published, or print one version.",
               help="List every rule-set version on the rules-history topic with when it was "
               "published (oldest first), or print one version as published (YAML): what was "
               "in force when an alert named it, for audit.")
@click.option("--version", "version", default=None, metavar="VERSION",
              help="Print this version's rule set instead of the list.")
@broker_option
def history(version: str | None) -> int:
    settings = kafka_settings()
    versions = asyncio.run(read_history(settings))
    if version is not None:
        published = versions.get(version)
        if published is None:
            raise UserError(f"version {version!r} is not on {settings.rules_history_topic} "
                            f"(amlstream rules history lists the {len(versions)} there)")
        print(f"# version {version}, published {published.published_at:%Y-%m-%d %H:%M:%S}Z")
        print(yaml.safe_dump(published.config, sort_keys=False), end="")
        return 0
    if not versions:
        print(f"no rule set on {settings.rules_history_topic} yet")
        return 0
    for published in sorted(versions.values(), key=lambda p: p.offset):
        print(f"{published.published_at:%Y-%m-%d %H:%M:%S}Z  {published.version}")
    return 0


@rules.command(short_help="Print the rule set in force on the rules topic.",
               help="Print the rule set in force on the rules topic, as YAML (or, if none is "
               "published, which file the workers use).")
@broker_option
def show() -> int:
    settings = kafka_settings()
    current = asyncio.run(read_latest(settings))
    if current is None:
        print(f"no rule set on {settings.rules_topic}: workers use {settings.rules_path}")
        return 0
    print(f"# in force: {_summary(current)}")
    print(yaml.safe_dump(current.config.model_dump(mode="json"), sort_keys=False), end="")
    return 0
