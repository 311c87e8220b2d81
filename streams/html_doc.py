"""The HTML documents amlstream writes (the backtest's report, the case file): one
self-contained page each, inline CSS, no script, nothing loaded from elsewhere. Every text
from the records goes through :func:`escape`; :func:`table` escapes its cells itself."""

import html
from collections.abc import Sequence

BASE_CSS = """\
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 1.5em;
       color: #1a1a1a; background: #fff; font-size: 15px; }
h1 { font-size: 1.6em; margin-bottom: .3em; }
h2 { font-size: 1.25em; margin: 1.2em 0 .4em; }
h3 { font-size: 1.05em; margin: 1em 0 .3em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .3em 0 1em; font-size: .9em; }
th, td { border: 1px solid #c8c8c8; padding: .2em .5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #eef1f5; }
tfoot td { font-weight: bold; background: #f6f6f6; }
td.zero { color: #aaa; }
dl.totals { display: grid; grid-template-columns: max-content max-content; gap: .2em 1em; }
dl.totals dt { color: #555; }
dl.totals dd { margin: 0; font-weight: bold; text-align: right; }
"""
"""The style every page shares: text, headings, tables, ``dl.totals`` (label/value pairs)."""


def escape(text: object) -> str:
    """``text`` as HTML text or attribute value (quotes escaped too)."""
    return html.escape(str(text), quote=True)


def table(head: Sequence[str], rows: Sequence[Sequence[object]],
          foot: Sequence[object] | None = None) -> str:
    """A table (in a horizontally scrolling box), every cell escaped; a body cell equal to 0
    is greyed (``td.zero``)."""
    def cells(values: Sequence[object], tag: str) -> str:
        out = []
        for value in values:
            zero = ' class="zero"' if tag == "td" and value == 0 else ""
            out.append(f"<{tag}{zero}>{escape(value)}</{tag}>")
        return "".join(out)

    parts = ['<div class="scroll"><table>', f"<thead><tr>{cells(head, 'th')}</tr></thead><tbody>"]
    parts += [f"<tr>{cells(row, 'td')}</tr>" for row in rows]
    parts.append("</tbody>")
    if foot is not None:
        parts.append(f"<tfoot><tr>{cells(foot, 'td')}</tr></tfoot>")
    parts.append("</table></div>")
    return "".join(parts)


def page(title: str, body: str, css: str = BASE_CSS) -> str:
    """The whole document: ``title`` is escaped here; ``body`` is HTML already."""
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")
