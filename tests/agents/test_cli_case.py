"""``amlstream case`` without a broker: its help, and one-line errors with exit status 2."""

import socket

from click.testing import CliRunner

from agents.cli_case import case


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_describes_the_argument_and_every_option() -> None:
    result = CliRunner().invoke(case, ["--help"])
    assert result.exit_code == 0
    assert "Usage: case [OPTIONS] CUSTOMER_ID" in result.stdout
    assert "--out DIR" in result.stdout and "created if missing" in result.stdout
    assert "[default: cases]" in result.stdout
    assert "--broker URL" in result.stdout and "AMLSTREAM_BROKER" in result.stdout


def test_unreachable_broker_is_one_line_and_exit_2(tmp_path) -> None:
    port = _closed_port()
    result = CliRunner().invoke(case, ["c1", "--out", str(tmp_path / "cases"), "--broker",
                                       f"kafka://127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert result.stderr == (f"amlstream case: cannot reach the Kafka broker at 127.0.0.1:{port}"
                             " (--broker or AMLSTREAM_BROKER)\n")
    assert not (tmp_path / "cases").exists()


def test_invalid_settings_and_empty_id_are_refused(tmp_path) -> None:
    result = CliRunner().invoke(case, ["c1"], env={"AMLSTREAM_PARTITIONS": "0"})
    assert result.exit_code == 2
    assert result.stderr.startswith("amlstream case: invalid settings: AMLSTREAM_PARTITIONS: ")
    assert len(result.stderr.splitlines()) == 1
    empty = CliRunner().invoke(case, ["  "])
    assert empty.exit_code == 2 and "the customer id is empty" in empty.stderr
