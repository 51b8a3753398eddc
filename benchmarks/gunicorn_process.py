"""Starting and stopping a real gunicorn of this project in its own session, shared by
the flash-sale benchmark and the fault-injection tests."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
VENV_GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
GUNICORN = str(VENV_GUNICORN) if VENV_GUNICORN.exists() else "gunicorn"


def start_gunicorn(
    *, env: dict[str, str], log: IO[bytes], base_url: str, timeout: float
) -> subprocess.Popen:
    """Starts gunicorn with ``config/gunicorn.conf.py`` and waits until ``/healthz``
    answers 200; ``RuntimeError`` if it exits first or is not healthy in ``timeout``."""
    import urllib3

    proc = subprocess.Popen(
        [GUNICORN, "config.wsgi", "-c", "config/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    http = urllib3.PoolManager(retries=False, timeout=2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        try:
            if http.request("GET", f"{base_url}/healthz").status == 200:
                return proc
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.2)
    stop_gunicorn(proc)
    raise RuntimeError(f"gunicorn did not become healthy in {timeout}s")


def stop_gunicorn(proc: subprocess.Popen | None, *, grace: float = 30) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
