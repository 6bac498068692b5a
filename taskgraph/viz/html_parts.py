"""Pieces of the HTML report: its style sheet, numbers, inline PNG figures and tables.

Everything is inline (``data:`` URIs, one ``<style>``): no scripts, no links.

Example:
    >>> num(0.12345), num(12345), num(None), num(float("nan"))
    ('0.123', '12,345', '–', '–')
    >>> table([("task", False), ("n", True)], [["a", "3"]], "t")  # doctest: +ELLIPSIS
    '<div class="scroll"><table id="t"><thead><tr><th>task</th><th class=num>n</th>...'
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Iterable

__all__ = ["CSS", "num", "css_width", "img", "png", "table"]

CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#fafafa}
main{max-width:1400px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:36px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:20px 0 6px}
p.sub{color:#666;margin:0 0 16px}.note{color:#666;font-size:13px}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:3px 18px;font-size:14px}
dl.summary dt{color:#666}dl.summary dd{margin:0}
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:0}
.hscroll{overflow-x:auto}.hscroll img{max-width:none}
figcaption{color:#666;font-size:13px;margin-top:4px}
.scroll{max-height:560px;overflow:auto;border:1px solid #e5e5e5}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}
.t-binary{color:#0072B2}.t-multiclass{color:#D55E00}.t-multilabel{color:#009E73}
.t-regression{color:#9C4F96}footer{margin-top:40px;color:#888;font-size:12px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:0 28px}.pair table{width:100%}
"""


def num(value: Any, digits: int = 3) -> str:
    """A number as table text: ``digits`` decimals (or significant digits when tiny or
    huge), thousands separated; ``–`` for missing or non-finite values."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}f}" if value == 0 or 1e-3 <= abs(value) < 1e4 \
            else f"{value:.{digits}g}"
    return html.escape(str(value))


def css_width(data: bytes) -> int | None:
    """The display width in CSS pixels of a PNG, from its size and pHYs density
    (120 CSS pixels per inch, a little above print size)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width = int.from_bytes(data[16:20], "big")
    at = data.find(b"pHYs", 8, 4096)
    if at < 0:
        return width
    per_metre = int.from_bytes(data[at + 4:at + 8], "big")
    unit = data[at + 12]
    if unit != 1 or per_metre <= 0:
        return width
    return round(width * 120 / (per_metre * 0.0254))


def img(data: bytes, alt: str, caption: str = "", *, scroll: bool = False) -> str:
    """A ``<figure>`` with the PNG inline; ``scroll``: full size in a scrolling box."""
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    width = css_width(data)
    size = f' width="{width}"' if width else ""
    tag = f'<img src="{src}" alt="{html.escape(alt)}"{size}>'
    if scroll:
        tag = f'<div class="hscroll">{tag}</div>'
    return f"<figure>{tag}{cap}</figure>"


def png(plot: Any, *args: Any, **kwargs: Any) -> bytes:
    """The PNG bytes of ``plot(*args, buffer, **kwargs)`` (a taskgraph figure function)."""
    buf = io.BytesIO()
    plot(*args, buf, **kwargs)
    return buf.getvalue()


def table(headers: list[tuple[str, bool]], rows: Iterable[list[str]], table_id: str) -> str:
    """A scrolling ``<table id=table_id>``: ``headers`` are ``(title, numeric)``; cells
    are HTML already (escape text before)."""
    head = "".join(f'<th{" class=num" if numeric else ""}>{html.escape(h)}</th>'
                   for h, numeric in headers)
    body = "".join("<tr>" + "".join(
        f'<td{" class=num" if numeric else ""}>{cell}</td>'
        for cell, (_, numeric) in zip(r, headers)) + "</tr>\n" for r in rows)
    return (f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}</tbody></table></div>")
