"""What the ``amlstream`` commands share: the Click classes they are built with, ``--broker``,
the settings listed in ``worker --help``, and :class:`UserError`.

A command module (``agents/cli_rules.py`` and the like) builds its command or group with
:class:`Command` / :class:`Group` (an argument takes ``help=`` through :class:`Arg`), adds
:func:`broker_option` if it talks to Kafka and gets its settings from :func:`kafka_settings`,
and raises :class:`UserError` for a problem the user can fix; ``agents/cli.py`` adds it to the
root group.
"""

import os
import textwrap
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from agents import broker_wait
from agents.settings import Settings
from streams.ruleset import RuleSetError


class UserError(Exception):
    """A problem the user can fix, said as one or two lines on stderr (no traceback), exit 2:
    what is wrong, where (the setting, option or file), and what to do."""


class Arg(click.Argument):
    """A positional argument with help text (Click's own take none), listed under
    "Arguments" in the command's help."""

    def __init__(self, param_decls: list[str], help: str, **kwargs: Any) -> None:
        super().__init__(param_decls, **kwargs)
        self.help = help


class Command(click.Command):
    """A command whose help lists its arguments (:class:`Arg`) before its options."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(param.human_readable_name, param.help) for param in self.get_params(ctx)
                if isinstance(param, Arg)]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)


class Group(click.Group):
    """A group whose commands and subgroups are built with these classes."""

    command_class = Command
    group_class = type  # subgroups: this class


def rule_file_problem(path: Path, exc: RuleSetError) -> str:
    """What is wrong with the rule file at ``path``, naming the file once."""
    message = str(exc)
    return message if message.startswith("cannot read") else f"{path}: {message}"


def normalise_broker(text: str) -> str:
    """``host:port`` or ``kafka://host:port`` (several separated by ``;`` or ``,``) as
    ``AMLSTREAM_BROKER`` wants it: ``kafka://host:port;kafka://host:port``."""
    urls = []
    for part in text.replace(",", ";").split(";"):
        part = part.strip()
        scheme, _, address = part.rpartition("://")
        host, _, port = address.rpartition(":")
        if scheme not in ("", "kafka") or not host or not port.isdigit():
            raise click.BadParameter(f"{part!r} is not host:port or kafka://host:port",
                                     param_hint="--broker")
        urls.append(f"kafka://{host}:{port}")
    return ";".join(urls)


def _set_broker(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        os.environ["AMLSTREAM_BROKER"] = normalise_broker(value)


broker_option = click.option(
    "--broker", metavar="URL", expose_value=False, callback=_set_broker,
    help="Kafka bootstrap server for this run, kafka://host:port or host:port (several: "
    "separated by ;). Overrides AMLSTREAM_BROKER.")
"""The ``--broker URL`` option of every command that talks to Kafka."""


def kafka_settings(settings: Settings | None = None) -> Settings:
    """The settings (``Settings()`` unless given), once the broker they name can be reached
    (``broker_wait``: a countdown on stderr while it cannot, for AMLSTREAM_BROKER_WAIT_S)."""
    settings = settings if settings is not None else Settings()
    broker_wait.wait_for_broker(settings)
    return settings


def _default(name: str, field: Any) -> str:
    if SecretStr in getattr(field.annotation, "__args__", (field.annotation,)):
        return "secret, not shown"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def settings_epilog(width: int = 76) -> str:
    """Every setting of :class:`Settings`: its environment variable, default and description,
    for a command's help (a ``\\b`` paragraph: Click keeps its lines as they are)."""
    lines = ["Settings: environment variables (or a .env file) read by the worker.", "", "\b"]
    for name, field in Settings.model_fields.items():
        lines.append(f"AMLSTREAM_{name.upper()}  [default: {_default(name, field)}]")
        lines += textwrap.wrap(field.description or "", width - 4, initial_indent="    ",
                               subsequent_indent="    ")
    return "\n".join(lines)
