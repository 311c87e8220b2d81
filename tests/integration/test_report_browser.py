"""The backtest's HTML report in a real browser: headless Chromium renders it, and the plots
are there, laid out at a readable size and painted.

The report compares two real backtests over the synthetic stream (the planted customers, some
ordinary ones and the malformed messages): the default rule set and one with lower large-
transfer limits for tiers 2 and 3, plus a sweep of that limit. Chromium is Debian's
``chromium`` (``scripts/system-deps`` installs it; ``make test`` runs that first). If it is
missing the test fails: it is never skipped.

Set ``AMLSTREAM_REPORT_ARTIFACTS=DIR`` to keep the report and the screenshot in DIR.
"""

import copy
import io
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from agents.report import ReportRun, Sweep, render_report
from agents.settings import Settings
from streams.backtest import BacktestResult, run_backtest
from streams.ruleset import compile_rules, parse_rule_set
from streams.synthetic import (
    background_scenarios,
    bad_messages,
    planted_scenarios,
    to_messages,
)

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 21, tzinfo=UTC)
WINDOW = (1280, 2000)
FIGURES = ["alerts-per-day-1", "alerts-per-day-2", "sweep-curve"]
CHROMIUM_TIMEOUT_S = 120

# Appended to a copy of the report (the report itself has no script): records where each
# figure and its plot were laid out, for --dump-dom to return.
MEASURE = """<script>
const boxes = {};
for (const figure of document.querySelectorAll("figure")) {
  const plot = figure.querySelector("svg, img");
  const box = (e) => { const r = e.getBoundingClientRect();
                       return [r.left + scrollX, r.top + scrollY, r.width, r.height]; };
  boxes[figure.id] = {figure: box(figure), plot: plot ? box(plot) : null};
}
document.documentElement.setAttribute("data-boxes", JSON.stringify(boxes));
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not on PATH: the report's browser test needs Debian's chromium "
                    "package; run scripts/system-deps (as root; make test runs it) or "
                    "apt-get install -y --no-install-recommends chromium")
    command = [binary, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S,
                          check=False)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def colour_counts(image: Image.Image) -> list[tuple[int, tuple[int, ...]]]:
    """(pixel count, RGB) of every colour in an RGB image."""
    colours = image.getcolors(maxcolors=image.width * image.height)
    assert colours is not None
    return [(count, rgb) for count, rgb in colours if isinstance(rgb, tuple)]


def backtest(rules_document: dict[str, Any], base_dir: Path) -> BacktestResult:
    rules = compile_rules(parse_rule_set(rules_document), base_dir)
    scenarios = planted_scenarios(END) + background_scenarios(300, END, seed=13)
    messages = to_messages(scenarios) + [message for message, _ in bad_messages(END)]
    return run_backtest(((m.topic, m.key, m.value) for m in messages), rules)


def with_large_transfer_limit(document: dict[str, Any], usd: int) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["version"] = f"{document['version']}-large-{usd}"
    for tier in (2, 3):
        changed["tiers"][tier]["large_transfer_usd"] = str(usd)
    return changed


@pytest.fixture(scope="module")
def report_html() -> str:
    path = Settings().rules_path
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    base_dir = path.resolve().parent
    lower = with_large_transfer_limit(document, 1500)
    runs = [ReportRun.from_backtest(f"{d['version']} ({label})", backtest(d, base_dir))
            for d, label in ((document, "config/rules.yaml"), (lower, "large_transfer 1500"))]
    points: list[tuple[float, int, int]] = []
    for usd in (500, 1000, 1500, 2000):
        alerts = [a for a in backtest(with_large_transfer_limit(document, usd), base_dir).alerts
                  if a.rule_id == "large_transfer"]
        points.append((usd, len(alerts), len({a.customer_id for a in alerts})))
    assert runs[1].customers_alerted > runs[0].customers_alerted  # the compare has a diff
    sweep = Sweep("large_transfer", "large_transfer_usd (tiers 2 and 3)", points)
    return render_report("Backtest: lower large-transfer limits <tiers 2-3>", runs, sweep)


def test_report_renders_in_headless_chromium(report_html: str, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(report_html, encoding="utf-8")

    # The DOM after rendering: every figure, each with a plot and a caption.
    dom = chromium("--dump-dom", report.as_uri(), profile=tmp_path / "profile").stdout
    assert "<h1>Backtest: lower large-transfer limits &lt;tiers 2-3&gt;</h1>" in dom
    for figure_id in FIGURES:
        start = dom.index(f'<figure id="{figure_id}"')
        figure = dom[start:dom.index("</figure>", start)]
        assert "<svg" in figure or "<img" in figure, figure_id
        assert "<figcaption>" in figure, figure_id
        assert figure.count("<path") > 50, f"{figure_id} draws almost nothing"

    # Where the browser laid the plots out: readable sizes, inside the page.
    measured = tmp_path / "measured.html"
    measured.write_text(report_html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    measured_dom = chromium(f"--window-size={WINDOW[0]},{WINDOW[1]}", "--dump-dom",
                            measured.as_uri(), profile=tmp_path / "profile").stdout
    start = measured_dom.index('data-boxes="') + len('data-boxes="')
    boxes = json.loads(measured_dom[start:measured_dom.index('"', start)]
                       .replace("&quot;", '"').replace("&amp;", "&"))
    assert sorted(boxes) == sorted(FIGURES)
    for figure_id, box in boxes.items():
        _, _, width, height = box["plot"]
        assert 400 <= width <= WINDOW[0] and 250 <= height <= 1500, (figure_id, box)
    left_a, top_a, width_a, _ = boxes["alerts-per-day-1"]["plot"]
    left_b, top_b, _, _ = boxes["alerts-per-day-2"]["plot"]
    assert top_a == top_b and left_b >= left_a + width_a, "the compare is not side by side"

    # The screenshot: a real image, not blank, with the plots painted where they were laid out.
    screenshot = tmp_path / "report.png"
    chromium(f"--screenshot={screenshot}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
             report.as_uri(), profile=tmp_path / "profile")
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.size == WINDOW
    colours = colour_counts(image)
    assert len(colours) > 200, "the screenshot has almost no colours"
    white = sum(count for count, rgb in colours if min(rgb) >= 250)
    assert white < 0.9 * WINDOW[0] * WINDOW[1], "the screenshot is almost blank"
    for figure_id in ("alerts-per-day-1", "alerts-per-day-2"):
        left, top, width, height = (round(v) for v in boxes[figure_id]["plot"])
        assert top + height <= WINDOW[1], f"{figure_id} is below the screenshot"
        plot = image.crop((left, top, left + width, top + height))
        # Bars in many rule colours (tab20): count colours covering at least 30 pixels.
        solid = [rgb for count, rgb in colour_counts(plot)
                 if count >= 30 and max(rgb) - min(rgb) > 40]
        assert len(solid) >= 10, f"{figure_id}: {len(solid)} bar colours painted"

    keep = os.environ.get("AMLSTREAM_REPORT_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(report, keep)
        shutil.copy(screenshot, keep)
