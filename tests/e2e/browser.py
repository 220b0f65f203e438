"""A page as a person reads it: Debian's chromium, headless, on a local
file. Gives the DOM after rendering, a screenshot, and the console's
complaints (a blocked resource, a script error)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _run(page: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed (scripts/install-deps.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        # --no-sandbox: the suite runs as root in CI, where chromium's sandbox refuses to start.
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--enable-logging=stderr",
             "--v=0", f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout)


def render(page: Path) -> tuple[str, list[str]]:
    """The DOM after rendering, and the console lines that say something
    went wrong (blocked by the Content-Security-Policy, a script error)."""
    out = _run(page, "--dump-dom")
    if out.returncode != 0:
        raise RuntimeError(f"chromium exited {out.returncode}: {out.stderr[-2000:]}")
    complaints = [line for line in out.stderr.splitlines()
                  if "CONSOLE" in line or "Refused to" in line or "Uncaught" in line]
    return out.stdout, complaints


def screenshot(page: Path, png: Path, width: int = 1000, height: int = 1600) -> None:
    out = _run(page, f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
               "--hide-scrollbars")
    if out.returncode != 0 or not png.exists():
        raise RuntimeError(f"no screenshot (chromium exited {out.returncode}): {out.stderr[-2000:]}")
