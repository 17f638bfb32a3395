"""The self-contained HTML page: the decision summary, one container per chart, the Vega JavaScript inlined.

Nothing is fetched at view time: Vega, Vega-Lite and vega-embed come from ``vl_convert``'s bundle
and sit in the page; chart data is inlined in each spec. vega-embed's menu offers only image
export (no links to the online editor).
"""

from __future__ import annotations

import json
import re
from html import escape

EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False, "editor": False}}

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0; color: #222; background: #fafafa; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
.description { color: #555; margin: 0 0 18px; }
.decision { border-left: 6px solid #2ca02c; background: #f1f8f1; padding: 14px 20px; margin: 12px 0 8px; }
.decision.fail { border-left-color: #d62728; background: #fdf1f1; }
.verdict { font-weight: 600; margin: 0 0 6px; }
.decision.fail .verdict { color: #b01c1c; font-size: 18px; }
.recommendation { font-size: 18px; margin: 4px 0 12px; }
.decision h3 { font-size: 15px; margin: 12px 0 6px; }
table.figures { border-collapse: collapse; font-size: 14px; }
table.figures th { text-align: left; font-weight: normal; color: #555; padding: 3px 18px 3px 0; }
table.figures td { font-variant-numeric: tabular-nums; padding: 3px 0; }
.facts { color: #555; font-size: 13px; margin: 6px 0 20px; }
section { margin: 30px 0 0; border-top: 1px solid #e5e5e5; padding-top: 12px; }
section h2 { font-size: 19px; margin: 6px 0; }
.caption { color: #444; font-size: 14px; margin: 0 0 10px; max-width: 860px; }
.note { color: #8a5a00; background: #fff8e6; border: 1px solid #f0d9a0; padding: 6px 10px; font-size: 13px; margin: 6px 0; }
.chart { min-height: 40px; }
nav { font-size: 13px; margin: 0 0 8px; }
nav a { margin-right: 12px; color: #1f5fa8; text-decoration: none; }
footer { margin-top: 40px; border-top: 1px solid #e5e5e5; padding-top: 10px; font-size: 12px; color: #666; }
footer p { margin: 3px 0; }
"""


def _script_safe(text: str) -> str:
    """JavaScript that cannot close the surrounding <script> element early."""
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


def _json_for_script(data: object) -> str:
    """JSON with every ``<`` escaped, so no data string can end or comment out the script."""
    return json.dumps(data, allow_nan=False).replace("<", "\\u003c")


def render_page(
    *,
    title: str,
    description: str,
    summary_html: str,
    sections: list[dict],
    footer_lines: list[str],
    javascript: str,
) -> str:
    """The full HTML document.

    ``sections``: dicts with ``key``, ``title``, ``caption``, ``notes`` (list of str), ``spec``
    (Vega-Lite dict or None) and ``image`` (relative path of the exported image or None).
    """
    nav = " ".join(f'<a href="#sec-{escape(s["key"])}">{escape(s["title"])}</a>' for s in sections)
    body = []
    specs = {}
    for s in sections:
        body.append(f'<section id="sec-{escape(s["key"])}"><h2>{escape(s["title"])}</h2>')
        if s.get("caption"):
            body.append(f'<p class="caption">{escape(s["caption"])}</p>')
        for note in s.get("notes", []):
            body.append(f'<p class="note">{escape(note)}</p>')
        if s.get("spec") is not None:
            body.append(f'<div class="chart" id="chart-{escape(s["key"])}" data-chart="{escape(s["key"])}"></div>')
            specs[f"chart-{s['key']}"] = s["spec"]
            if s.get("image"):
                ext = s["image"].rsplit(".", 1)[-1].upper()
                body.append(f'<p class="caption"><a href="{escape(s["image"])}">This chart as {ext}</a></p>')
        body.append("</section>")
    footer = "".join(f"<p>{escape(line)}</p>" for line in footer_lines)
    embed = (
        "const SPECS = " + _json_for_script(specs) + ";\n"
        "const OPTS = " + json.dumps(EMBED_OPTIONS) + ";\n"
        "for (const [id, spec] of Object.entries(SPECS)) {\n"
        "  const el = document.getElementById(id);\n"
        "  vegaEmbed('#' + id, spec, OPTS)\n"
        "    .then(() => { el.dataset.rendered = 'yes'; })\n"
        "    .catch((err) => { el.dataset.rendered = 'error'; console.error('chart ' + id + ': ' + err); });\n"
        "}\n"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
<script>
{_script_safe(javascript)}
</script>
</head>
<body>
<main>
<h1>{escape(title)}</h1>
<p class="description">{escape(description)}</p>
{summary_html}
<nav>{nav}</nav>
{"".join(body)}
<footer>{footer}</footer>
</main>
<script>
{embed}
</script>
</body>
</html>
"""
