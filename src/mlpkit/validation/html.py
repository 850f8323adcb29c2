"""A self-contained HTML report: one file, CSS inline, images embedded as base64, no scripts, no server.

>>> page = HtmlReport("Validation of water-bpnn")
>>> page.add_heading("Checks")
>>> page.add_table(["check", "status"], [["NVE", "PASS"]], status_column=1)
>>> page.add_image("parity_energy.png", "Energy parity")   # doctest: +SKIP
>>> page.write("report.html")                                # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from collections.abc import Sequence
from pathlib import Path

from mlpkit.errors import InputError

#: background and text colours of status cells
STATUS_COLOURS = {
    "PASS": ("#d4f4dd", "#11632b"),
    "FAIL": ("#fbd5d5", "#9b1c1c"),
    "WARN": ("#fdf0c4", "#8a5a00"),
    "SKIP": ("#e5e7eb", "#4b5563"),
}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1f2937; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #e5e7eb; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; width: 100%; }
th, td { border: 1px solid #d1d5db; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.status { font-weight: 700; text-align: center; white-space: nowrap; }
figure { display: inline-block; margin: .5em 1% .5em 0; vertical-align: top; width: 48%; }
figure.wide { width: 98%; }
figure img { width: 100%; height: auto; border: 1px solid #e5e7eb; }
figcaption { font-size: .85em; color: #4b5563; }
p.meta { color: #6b7280; font-size: .85em; }
pre { background: #f9fafb; padding: .6em; overflow-x: auto; font-size: .85em; }
"""


def _aspect(path: Path) -> float:
    """Width/height of a PNG from its header (1.0 for other formats or an odd file)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return 1.0
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return width / height if height else 1.0


class HtmlReport:
    """Build a report block by block, then :meth:`write` one standalone ``.html`` file.

    Text is HTML-escaped; images are read when added and embedded as ``data:`` URIs, so the file can be
    mailed or opened from any folder offline.
    """

    def __init__(self, title: str = "mlpkit report", subtitle: str | None = None):
        self.title = title
        self._blocks: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        from mlpkit.version import __version__

        meta = f"mlpkit {__version__} · {stamp}"
        if subtitle:
            meta = f"{html.escape(subtitle)}<br>{meta}"
        self._blocks.append(f'<p class="meta">{meta}</p>')
        self.n_images = 0

    def add_heading(self, text: str, level: int = 2) -> None:
        """A section heading (``level`` 1-4)."""
        level = min(max(int(level), 1), 4)
        self._blocks.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def add_paragraph(self, text: str) -> None:
        """A paragraph of plain text (escaped)."""
        self._blocks.append(f"<p>{html.escape(text)}</p>")

    def add_preformatted(self, text: str) -> None:
        """Monospaced text, e.g. a command line or a settings dump."""
        self._blocks.append(f"<pre>{html.escape(text)}</pre>")

    def add_table(self, header: Sequence[str], rows: Sequence[Sequence], status_column: int | None = None) -> None:
        """A table; cells are str()-ed and escaped. ``status_column``: index of a PASS/FAIL/WARN/SKIP column to
        colour (green/red/amber/grey)."""
        out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
        for row in rows:
            cells = []
            for k, cell in enumerate(row):
                text = html.escape("" if cell is None else str(cell))
                if status_column is not None and k == status_column:
                    bg, fg = STATUS_COLOURS.get(str(cell).upper(), ("#ffffff", "#111827"))
                    cells.append(f'<td class="status" style="background:{bg};color:{fg}">{text}</td>')
                else:
                    cells.append(f"<td>{text}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self._blocks.append("\n".join(out))

    def add_image(self, png_path: str | os.PathLike, caption: str = "", wide: bool | None = None) -> None:
        """Embed a PNG (or JPEG/SVG) file as a base64 ``data:`` URI, with a caption.

        Figures sit two per row; ``wide=True`` gives one the full width (default: PNGs more than 1.6 times
        wider than tall)."""
        path = Path(png_path)
        if not path.is_file():
            raise InputError(f"image {path} does not exist")
        mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}.get(
            path.suffix.lower()
        )
        if mime is None:
            raise InputError(f"cannot embed {path}: only PNG, JPEG and SVG images")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        alt = html.escape(caption or path.name)
        # images wider than tall (two-panel plots) get the full width, square ones half of it
        cls = ' class="wide"' if wide or (wide is None and _aspect(path) > 1.6) else ""
        self._blocks.append(
            f'<figure{cls}><img src="data:{mime};base64,{data}" alt="{alt}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        self.n_images += 1

    def to_html(self) -> str:
        """The whole page as a string."""
        body = "\n".join(self._blocks)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )

    def write(self, path: str | os.PathLike) -> Path:
        """Write the page (UTF-8) atomically to ``path`` and return it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_html(), encoding="utf-8")
        os.replace(tmp, path)
        return path
