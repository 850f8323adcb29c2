"""report.html opens in a real browser (headless Chromium) with its table and every plot intact.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped with that reason when no
Chromium is on PATH. Two views of the same page: the DOM after load (every <img> is a data: URI that
decoded to a non-zero natural size, the status cells are there), and a screenshot (not blank, with the
PASS-green of the status column and the plots' pixels).
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from mlpkit.validation import ValidationSettings, validate
from validation_potentials import PairLabeler, PairPotential, water_data

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs headless Chromium: install Debian's package with `apt-get install -y chromium`"
)

# Appended to a copy of the page only (the report itself has no scripts): lists each image's decoded size.
PROBE = """<script>
window.addEventListener('load', () => {
  const rows = [...document.images].map(i => [i.src.slice(0, 22), i.naturalWidth, i.naturalHeight, i.complete]);
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(rows);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-report")
    return validate(
        PairPotential(),
        water_data(60, 0.02, seed=1),
        water_data(20, 0.02, seed=2),
        out_dir=out,
        settings=ValidationSettings(nve_steps=300),
        reference=PairLabeler(1.001),
        progress=False,
    )


def test_report_images_decode_in_chromium(report, tmp_path):
    page = report.html_path.read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "\n</body>"))
    res = _chromium(["--dump-dom", "--virtual-time-budget=10000", probe.as_uri()], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, "the probe script did not run: " + dom[-500:]
    images = json.loads(html_lib.unescape(match.group(1)))
    assert len(images) >= 8  # parity x4, histograms, per-element, NVE, frequencies, extrapolation
    for src, width, height, complete in images:
        assert src.startswith("data:image/png;base64"), src
        assert complete and width > 100 and height > 100, (src, width, height)
    assert dom.count('class="status"') == len(report.checks)
    assert "Checklist" in dom and "Harmonic frequencies" in dom


def test_report_screenshot_shows_table_and_plots(report, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    res = _chromium(["--window-size=1280,2400", f"--screenshot={shot}", report.html_path.as_uri()], tmp_path)
    assert shot.exists(), res.stderr[-2000:]
    img = (imread(shot)[..., :3] * 255).round().astype(int)
    assert img.shape[0] == 2400 and img.shape[1] == 1280
    assert img.std() > 20  # not a blank page
    # the PASS cells' green background (#d4f4dd) is painted
    green = np.all(np.abs(img - np.array([0xD4, 0xF4, 0xDD])) <= 2, axis=-1)
    assert green.sum() > 2000
    # matplotlib's default blue (#1f77b4) of the parity plots' points and bars is on the page
    blue = np.all(np.abs(img - np.array([0x1F, 0x77, 0xB4])) <= 12, axis=-1)
    assert blue.sum() > 500
    keep = report.out_dir / "screenshot.png"  # left next to the report for a human look
    shutil.copy(shot, keep)
