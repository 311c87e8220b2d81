"""``amlstream schemas``: the JSON Schema of every wire model."""

import json
from pathlib import Path

import click

from agents.cli_common import Command, UserError


@click.command(cls=Command, short_help="Write the JSON Schema of every wire model.",
               help="Write the JSON Schema of every model on the wire (events, alerts, dead "
               "letters, risk changes, rule sets, address intelligence), one file each.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("schemas/json"),
              show_default=True, metavar="DIR", help="Output directory (created if missing).")
def schemas(out: Path) -> int:
    from schemas.alerts import Alert
    from schemas.dead_letters import DeadLetter
    from schemas.decisions import AlertDecision
    from schemas.events import OnboardingEvent, TransactionEvent
    from schemas.intel import AddressIntel
    from schemas.risk import RiskChange
    from schemas.rules import RuleSet

    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, model in (("transaction-event", TransactionEvent),
                            ("onboarding-event", OnboardingEvent), ("alert", Alert),
                            ("dead-letter", DeadLetter), ("risk-change", RiskChange),
                            ("rule-set", RuleSet), ("address-intel", AddressIntel),
                            ("alert-decision", AlertDecision)):
            path = out / f"{name}.schema.json"
            path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n",
                            encoding="utf-8")
            print(path)
    except OSError as exc:
        raise UserError(f"cannot write the schemas to {out}: {exc.strerror or exc}; give "
                        "--out a directory you can write to") from None
    return 0
