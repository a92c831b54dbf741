"""Render a validation report HTML file to a PNG with headless Chromium.

Usage:
    python scripts/screenshot_report.py REPORT.html OUT.png [--width 1280] [--height 4000]
    python scripts/screenshot_report.py --synthetic 50000 OUT.png   # build a demo report first

Chromium (Debian package ``chromium``) must be installed at /usr/bin/chromium or on PATH.
All network features are disabled; the report is self-contained, so none is needed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 4000, timeout: float = 120.0) -> Path:
    """Take a full-window screenshot of ``html_path`` into ``png_path``; raises on failure."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found (install: apt-get install -y chromium)")
    png_path = Path(png_path).resolve()
    png_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png_path}",
               f"--window-size={width},{height}", Path(html_path).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png_path.exists() or png_path.stat().st_size == 0:
        raise RuntimeError(f"chromium produced no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return png_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", nargs="?", help="report HTML file (omit with --synthetic)")
    ap.add_argument("png", help="output PNG path")
    ap.add_argument("--synthetic", type=int, metavar="N", help="first build a report on N synthetic observations")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=4000)
    args = ap.parse_args(argv)
    html_path = args.html
    if args.synthetic:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from pipelines.validation_demo import synthetic_validation_inputs
        from pipelines.validation_report import build_validation, write_report

        html_path = str(Path(args.png).with_suffix(".html"))
        write_report(build_validation(**synthetic_validation_inputs(args.synthetic)), html_path)
    if not html_path:
        ap.error("give REPORT.html or --synthetic N")
    out = screenshot(Path(html_path), Path(args.png), args.width, args.height)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
