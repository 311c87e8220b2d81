"""``amlstream case`` and ``amlstream decide`` without a broker: their help, and one-line
errors with exit status 2."""

import socket

from agents.cli import main


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_case_help_describes_the_argument_and_every_option(capsys) -> None:
    assert main(["case", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: amlstream case [OPTIONS] CUSTOMER_ID" in out
    assert "--out DIR" in out and "created if missing" in out
    assert "[default: cases]" in out
    assert "--broker URL" in out and "AMLSTREAM_BROKER" in out


def test_case_with_an_unreachable_broker_is_one_line_and_exit_2(tmp_path, capsys,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("AMLSTREAM_BROKER_WAIT_S", "0")
    port = _closed_port()
    assert main(["case", "c1", "--out", str(tmp_path / "cases"), "--broker",
                 f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and f"127.0.0.1:{port}" in err[-1] and "--broker" in err[-1]
    assert not (tmp_path / "cases").exists()


def test_invalid_settings_and_an_empty_id_are_refused(capsys, monkeypatch) -> None:
    monkeypatch.setenv("AMLSTREAM_PARTITIONS", "0")
    assert main(["case", "c1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amlstream: invalid settings: AMLSTREAM_PARTITIONS: ")
    assert len(err.splitlines()) == 1
    monkeypatch.delenv("AMLSTREAM_PARTITIONS")
    assert main(["case", "  "]) == 2
    assert "the customer id is empty" in capsys.readouterr().err


def test_decide_refuses_an_empty_reason_and_an_unknown_decision(capsys) -> None:
    base = ["decide", "a1", "--customer", "c1", "--rule", "large_transfer", "--by", "ana"]
    assert main([*base, "--decision", "false_positive", "--reason", " "]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amlstream: decide: reason:") and len(err.splitlines()) == 1
    assert main([*base, "--decision", "maybe", "--reason", "x"]) == 2
    assert "maybe" in capsys.readouterr().err


def test_decide_help_lists_the_decisions(capsys) -> None:
    assert main(["decide", "--help"]) == 0
    out = capsys.readouterr().out
    assert "false_positive" in out and "escalated" in out and "reported" in out
    assert "--whitelist-days DAYS" in out
