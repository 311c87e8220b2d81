"""The ``amlstream`` command line: help on everything, ``--version``, ``--broker``, and every
failure a user can fix said in one or two lines (exit 2), with the traceback only on --debug.
No broker runs here: an unreachable one is a closed port; a reachable one is faked."""

import importlib.metadata
import os
import socket
import time
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from agents import broker_wait, kafka_clients, rules_feed, topics
from agents.broker_wait import BrokerUnreachable, wait_for_broker
from agents.cli import main, root
from agents.cli_common import Arg, normalise_broker
from agents.kafka_clients import KafkaSecurityError
from agents.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {"worker", "demo", "alerts", "schemas", "rules", "intel", "backtest", "evaluate",
            "case", "decide"}
KAFKA_COMMANDS = {"worker", "alerts", "rules publish", "rules show", "rules history",
                  "intel publish",
                  "intel show", "intel remove", "backtest", "case", "decide"}
"""The commands with --broker (backtest: for --topics and --compare-topics)."""


def _walk(command: click.Command, path: str = "") -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _walk(sub, f"{path} {name}".strip())
    return found


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> str:
    """AMLSTREAM_BROKER at a port nothing listens on, no wait: its host:port."""
    address = f"127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AMLSTREAM_BROKER", f"kafka://{address}")
    monkeypatch.setenv("AMLSTREAM_BROKER_WAIT_S", "0")
    return address


@pytest.fixture
def broker_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_wait, "reach", lambda bootstrap: None)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# Help, version


def test_every_command_option_and_argument_has_help() -> None:
    missing = []
    for path, command in _walk(root):
        if not (command.help or "").strip() or not command.get_short_help_str(80).strip():
            missing.append(f"command '{path}'")
        with click.Context(command, info_name=path or "amlstream") as ctx:
            for param in command.get_params(ctx):
                if isinstance(param, click.Argument) and not isinstance(param, Arg):
                    missing.append(f"'{path}' argument {param.name} (not an Arg: no help)")
                elif not (getattr(param, "help", None) or "").strip():
                    missing.append(f"'{path}' {param.name}")
    assert missing == []
    assert {path.split()[0] for path, _ in _walk(root) if path} == COMMANDS


def test_the_root_help_lists_every_command_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = out.split("Commands:\n", 1)[1].splitlines()
    assert sorted(line.split()[0] for line in listed) == sorted(COMMANDS)
    for line in listed:
        summary = line.split(None, 1)[1]
        assert summary.endswith(".") and not summary.endswith("..."), line  # not cut short
    assert "``" not in out and "\b" not in out and "--debug" in out and "--version" in out
    assert main(["rules", "--help"]) == 0
    assert {"validate", "publish", "show"} <= set(capsys.readouterr().out.split())


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    version = importlib.metadata.version("amlstream")
    assert capsys.readouterr().out == f"amlstream {version}\n"


def test_worker_help_lists_every_setting_with_its_default(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--help"]) == 0
    out = capsys.readouterr().out
    for name in Settings.model_fields:
        assert f"AMLSTREAM_{name.upper()}  [default: " in out, name
    assert "AMLSTREAM_PARTITIONS  [default: 4]" in out
    assert "AMLSTREAM_BROKER_WAIT_S  [default: 30.0]" in out
    assert "AMLSTREAM_BROKER_PASSWORD  [default: secret, not shown]" in out
    assert "Partitions of the input topics and the state." in out
    assert "\b" not in out
    assert "--broker URL" in out and "--shadow NAME" in out


def test_an_argument_is_listed_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["intel", "remove", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Arguments:\n  LIST     The list: sanctions, mixer, chain_risk, service." in out


# --broker


def test_broker_is_an_option_of_every_command_that_talks_to_kafka_only() -> None:
    with_broker = set()
    for path, command in _walk(root):
        with click.Context(command) as ctx:
            if any(param.name == "broker" for param in command.get_params(ctx)):
                with_broker.add(path)
    assert with_broker == KAFKA_COMMANDS


@pytest.mark.parametrize("argv", [
    ["worker"], ["alerts"], ["rules", "show"], ["rules", "publish", "config/rules.yaml"],
    ["intel", "show"], ["intel", "remove", "mixer", "0xabc"], ["backtest", "--topics"],
    ["backtest", "--compare-topics", "alerts", "x-alerts"]])
def test_broker_overrides_the_setting_for_that_run(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str]) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("AMLSTREAM_BROKER", "kafka://elsewhere:9092")
    asked = []

    def wait(settings: Settings) -> None:
        asked.append(settings.broker)
        raise BrokerUnreachable("stopped here by the test")
    monkeypatch.setattr(broker_wait, "wait_for_broker", wait)

    assert main([*argv, "--broker", "kafka-1.test:9093"]) == 2
    assert asked == ["kafka://kafka-1.test:9093"]
    assert capsys.readouterr().err.strip().endswith("stopped here by the test")
    assert os.environ["AMLSTREAM_BROKER"] == "kafka://elsewhere:9092"  # for that run only


def test_broker_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert normalise_broker("a.test:9092") == "kafka://a.test:9092"
    assert normalise_broker("kafka://a:1; b:2") == "kafka://a:1;kafka://b:2"
    assert normalise_broker("a:1,b:2") == "kafka://a:1;kafka://b:2"
    assert main(["alerts", "--broker", "http://a:1"]) == 2
    assert "Invalid value for --broker: 'http://a:1' is not host:port" in capsys.readouterr().err
    assert main(["alerts", "--broker", "a"]) == 2


# The wait for the broker


def test_an_unreachable_broker_is_retried_with_a_countdown_then_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    monkeypatch.setenv("AMLSTREAM_BROKER_WAIT_S", "2")
    started = time.monotonic()
    assert main(["rules", "show", "--broker", f"127.0.0.1:{port}"]) == 2
    assert 1.9 < time.monotonic() - started < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (f"amlstream: Kafka broker at 127.0.0.1:{port} not reachable (Connection "
                      "refused); retrying in 2 s (attempt 2 of 2, AMLSTREAM_BROKER_WAIT_S=2)")
    assert len(err) == 2
    assert err[1].startswith(f"amlstream: cannot reach the Kafka broker at 127.0.0.1:{port} "
                             "(Connection refused, after AMLSTREAM_BROKER_WAIT_S=2 s): ")
    assert "AMLSTREAM_BROKER (or --broker URL)" in err[1]


def test_the_wait_counts_down_in_steps_and_ends_when_the_broker_answers() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = f"127.0.0.1:{listening.getsockname()[1]}"
        down = f"127.0.0.1:{_closed_port()}"
        said: list[str] = []
        slept: list[float] = []
        settings = Settings(broker=f"kafka://{down}", broker_wait_s=12)
        with pytest.raises(BrokerUnreachable, match=f"cannot reach the Kafka broker at {down}"):
            wait_for_broker(settings, said.append, slept.append)
        assert slept == [5, 5, 2]
        assert [line.split("(attempt ")[1][:6] for line in said] == ["2 of 4", "3 of 4",
                                                                      "4 of 4"]

        said.clear()
        slept.clear()
        wait_for_broker(Settings(broker=f"kafka://{down};kafka://{up}"), said.append,
                        slept.append)
        assert said == [] and slept == []  # one server answers: enough

    with socket.socket() as late:  # bound, not listening yet: refused
        late.bind(("127.0.0.1", 0))
        said.clear()
        settings = Settings(broker=f"kafka://127.0.0.1:{late.getsockname()[1]}")
        wait_for_broker(settings, said.append, lambda delay: late.listen())
        assert len(said) == 1 and "retrying in 5 s (attempt 2 of 7" in said[0]


@pytest.mark.parametrize("argv", [["alerts"], ["rules", "show"], ["worker"],
                                  ["intel", "show"]])
def test_an_unreachable_broker_names_the_setting_and_the_option(
        no_broker: str, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"amlstream: cannot reach the Kafka broker at {no_broker} ")
    assert "AMLSTREAM_BROKER" in line and "--broker" in line


def test_debug_shows_the_traceback(no_broker: str, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "alerts"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "BrokerUnreachable" in err
    assert err.strip().splitlines()[-1].startswith("amlstream: cannot reach the Kafka broker")
    monkeypatch.setenv("AMLSTREAM_LOG_LEVEL", "debug")
    assert main(["alerts"]) == 2
    assert "Traceback" in capsys.readouterr().err


# Other failures a user can fix


def test_a_missing_rule_file_names_the_setting(broker_up: None, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    async def nothing(settings: Settings) -> None:
        return None
    monkeypatch.setattr(topics, "ensure_topics", nothing)
    monkeypatch.setattr(rules_feed, "read_latest", nothing)  # none published: the file's
    missing = tmp_path / "none.yaml"
    monkeypatch.setenv("AMLSTREAM_RULES_PATH", str(missing))
    assert main(["worker"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"amlstream: AMLSTREAM_RULES_PATH: cannot read rule file {missing}: ")
    assert "No such file" in line and "set AMLSTREAM_RULES_PATH to another file" in line

    invalid = tmp_path / "invalid.yaml"
    document = yaml.safe_load((ROOT / "config" / "rules.yaml").read_text())
    document["tiers"][0]["large_transfr_usd"] = 1
    invalid.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("AMLSTREAM_RULES_PATH", str(invalid))
    assert main(["worker"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"amlstream: AMLSTREAM_RULES_PATH: {invalid}: invalid rule set: ")
    assert "large_transfr_usd" in line and "amlstream rules validate FILE" in line


def test_a_shadow_run_checks_its_rule_file_before_the_broker(
        no_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--shadow", "try", "--rules", str(tmp_path / "none.yaml")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"amlstream: --rules: cannot read rule file {tmp_path}/none.yaml")
    assert main(["worker", "--shadow", "try"]) == 2
    assert "--shadow needs --rules FILE" in capsys.readouterr().err


class _Admin:
    """An admin client of a cluster whose input topics have 2 partitions."""

    async def start(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return ["onboarding", "transactions"]

    async def describe_topics(self, names: list[str]) -> list[dict]:
        return [{"topic": name, "error_code": 0, "partitions": [{}, {}]} for name in names]

    async def close(self) -> None:
        pass


def test_a_partition_mismatch_names_the_topic_and_the_setting(
        broker_up: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(kafka_clients, "admin", lambda settings, **kwargs: _Admin())
    monkeypatch.setenv("AMLSTREAM_PARTITIONS", "4")
    assert main(["worker"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == ("amlstream: topic onboarding has 2 partitions but AMLSTREAM_PARTITIONS is 4: "
                    "the inputs and the state must match; set AMLSTREAM_PARTITIONS=2, the "
                    "count the topic has")


def test_an_unwritable_schemas_directory(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["schemas", "--out", str(blocker / "json")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"amlstream: cannot write the schemas to {blocker}/json: ")
    assert line.endswith("give --out a directory you can write to")


def test_invalid_settings_are_named(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AMLSTREAM_BROKER_WAIT_S", "-1")
    assert main(["alerts"]) == 2
    assert _one_line(capsys.readouterr().err) == (
        "amlstream: invalid settings: AMLSTREAM_BROKER_WAIT_S: Input should be greater than or "
        "equal to 0")


def test_a_refused_login_is_one_line(broker_up: None, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    async def refused(client: Any, settings: Settings) -> None:
        await client.stop()  # as kafka_clients.start does
        raise KafkaSecurityError("the broker b:9093 refused the login of AMLSTREAM_BROKER_"
                                 "USERNAME=u: check AMLSTREAM_BROKER_PASSWORD")
    monkeypatch.setattr(kafka_clients, "start", refused)
    assert main(["rules", "show"]) == 2
    assert _one_line(capsys.readouterr().err) == (
        "amlstream: the broker b:9093 refused the login of AMLSTREAM_BROKER_USERNAME=u: check "
        "AMLSTREAM_BROKER_PASSWORD")


def test_a_usage_error_is_clicks_short_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "No such command 'no-such-command'" in err and len(err.splitlines()) <= 4
    assert main(["evaluate"]) == 2
    assert "give one of --amlsim DIR and --events FILE.jsonl" in capsys.readouterr().err
