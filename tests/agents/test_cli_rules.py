"""``amlstream rules validate``: errors said once, by file and line; missing sections warned."""

from pathlib import Path

import yaml

from agents.cli import main

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "rules.yaml"


def _copy(tmp_path: Path, document: dict) -> Path:
    # Beside the shipped file, so that its list files (relative paths) resolve the same.
    path = SHIPPED.parent / f".test-{tmp_path.name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_validate_says_an_error_once_and_warns_of_a_missing_section(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: x\ntiers: [\n")
    assert main(["rules", "validate", str(broken)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"amlstream rules: cannot read rule file {broken}, line 3, column 1: "
                   "expected the node content, but found '<stream end>'"]

    document = yaml.safe_load(SHIPPED.read_text())
    del document["rules"]["structuring"]
    path = _copy(tmp_path, document)
    try:
        assert main(["rules", "validate", str(path)]) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith("valid: ")
        assert captured.err.splitlines() == [
            f"warning: {path}: rule structuring has no section under rules: it runs on its "
            "defaults (add the section to set them, or enabled: false)"]
        document["tiers"][0]["large_transfr_usd"] = 1
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        assert main(["rules", "validate", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"amlstream rules: {path}: invalid rule set: ")
        assert err.count("invalid rule set") == 1 and "did you mean 'large_transfer_usd'" in err
    finally:
        path.unlink()


def test_validate_reads_list_files_where_the_worker_does(tmp_path, capsys, monkeypatch):
    """A candidate rule file kept anywhere names its lists as the worker will read them once
    it is published: relative to the folder of the worker's own rule file."""
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(SHIPPED.read_text())  # lists/... : not beside it, but in config/
    assert main(["rules", "validate", str(candidate)]) == 0
    assert capsys.readouterr().out.startswith("valid: ")

    elsewhere = tmp_path / "worker-config"
    elsewhere.mkdir()
    monkeypatch.setenv("AMLSTREAM_RULES_PATH", str(elsewhere / "rules.yaml"))
    assert main(["rules", "validate", str(candidate)]) == 1
    err = capsys.readouterr().err
    assert str(elsewhere) in err and "lists" in err
