"""The live page seen through a real browser: Debian's headless Chromium, for the tests and
the docs' pictures (`screenshot`, the DOM with ``--dump-dom``)."""

import shutil
import subprocess


def headless_chromium(url, profile_dir, *args, wait_ms=3000) -> subprocess.CompletedProcess:
    """Run Debian's ``chromium`` headless on ``url`` with extra ``args`` (``--dump-dom``,
    ``--screenshot=PNG``...) once the page's scripts had ``wait_ms`` of virtual time.

    profile_dir: an empty folder for the browser profile. Returns the finished process (its
    stdout as text). Raises FileNotFoundError when no Chromium is installed.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise FileNotFoundError("no chromium on PATH: apt install chromium")
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile_dir}",
            f"--virtual-time-budget={wait_ms}",
            *args,
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


def screenshot(url, out, profile_dir, size=(1000, 760), wait_ms=3000):
    """Render ``url`` in headless Chromium into the PNG ``out``; returns ``out``."""
    headless_chromium(
        url,
        profile_dir,
        f"--window-size={size[0]},{size[1]}",
        f"--screenshot={out}",
        wait_ms=wait_ms,
    )
    return out
