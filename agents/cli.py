"""``amlstream``: the command line (Click).

Each command lives in its own module, ``agents/cli_<name>.py``, and is added to the root group
below with ``root.add_command``; what the commands share (``--broker``, help for arguments,
UserError) is in ``agents/cli_common.py``. :func:`main` runs the group and turns the failures
a user can fix into one or two lines on stderr and exit code 2 (``--debug``: the traceback too).
"""

import os
import sys
import traceback
from dataclasses import dataclass

import click
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from agents import (
    cli_alerts,
    cli_backtest,
    cli_case,
    cli_decide,
    cli_demo,
    cli_evaluate,
    cli_intel,
    cli_rules,
    cli_schemas,
    cli_worker,
)
from agents.broker_wait import BrokerUnreachable, unreachable_message
from agents.cli_common import Group, UserError
from agents.kafka_clients import KafkaSecurityError
from agents.settings import Settings
from agents.topics import TopicPartitionsError


@dataclass
class Options:
    """The root group's options, for :func:`main` (also after a command failed)."""

    debug: bool = False


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]},
             help="Real-time KYC/AML transaction monitoring on Kafka: the worker, the demo, "
             "and the tools around them. Settings come from AMLSTREAM_* environment variables "
             "(amlstream worker --help lists them).")
@click.version_option(package_name="amlstream", prog_name="amlstream",
                      message="%(prog)s %(version)s", help="Print the version and exit.")
@click.option("--debug", is_flag=True,
              help="On a failure, print the traceback too (as AMLSTREAM_LOG_LEVEL=debug does).")
@click.pass_context
def root(ctx: click.Context, debug: bool) -> None:
    ctx.ensure_object(Options).debug = debug


root.add_command(cli_worker.worker)
root.add_command(cli_demo.demo)
root.add_command(cli_alerts.alerts)
root.add_command(cli_schemas.schemas)
root.add_command(cli_rules.rules)
root.add_command(cli_intel.intel)
root.add_command(cli_backtest.backtest)
root.add_command(cli_evaluate.evaluate)
root.add_command(cli_case.case)
root.add_command(cli_decide.decide)


def main(argv: list[str] | None = None) -> int:
    """Run ``amlstream`` with ``argv`` (default: the process's arguments); the exit code."""
    options = Options()
    broker = os.environ.get("AMLSTREAM_BROKER")  # --broker changes it for this run only
    try:
        return int(root.main(argv, "amlstream", standalone_mode=False, obj=options) or 0)
    except click.ClickException as exc:  # a usage error: Click's short message
        exc.show()
        return exc.exit_code
    except click.Abort:  # Ctrl-C
        return 130
    except Exception as exc:
        message = _user_message(exc)
        if message is None:
            raise
        if options.debug or os.environ.get("AMLSTREAM_LOG_LEVEL", "").lower() == "debug":
            traceback.print_exc()
        print(f"amlstream: {message}", file=sys.stderr, flush=True)
        return 2
    finally:
        if broker is None:
            os.environ.pop("AMLSTREAM_BROKER", None)
        else:
            os.environ["AMLSTREAM_BROKER"] = broker


def _user_message(exc: Exception) -> str | None:
    """The line to say for a failure the user can fix; None for any other (a bug)."""
    if isinstance(exc, UserError | BrokerUnreachable | KafkaSecurityError | TopicPartitionsError):
        return str(exc)
    if isinstance(exc, KafkaConnectionError):  # reached at first, lost since
        return unreachable_message(Settings().bootstrap)
    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        return f"invalid settings: {_settings_errors(exc)}"
    return None


def _settings_errors(exc: ValidationError) -> str:
    """One line: each invalid setting named by its environment variable (never its value)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        names = [str(part) for part in error["loc"]]
        parts.append(f"AMLSTREAM_{names[0].upper()}: {message}" if names else message)
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
