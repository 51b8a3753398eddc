"""Real processes for fault-injection tests: a private PostgreSQL instance and gunicorn.

The private instance (``initdb`` into a temporary directory, ``pg_ctl`` on a free port)
can be stopped and started at will without disturbing the shared server everyone else
uses. When the tests run as root, PostgreSQL's tools run as the ``postgres`` user
(``initdb`` refuses root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
from django.conf import settings

from benchmarks.gunicorn_process import start_gunicorn, stop_gunicorn
from tests.support.processes import ROOT, free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a fresh temporary directory, listening on
    127.0.0.1:<port>. (Not under pytest's ``tmp_path``: its parents are private to root,
    and the server runs as ``postgres``.)"""

    def __init__(self) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix="pg-fault-"))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(  # noqa: S603 - fixed argument lists
            cmd, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): {done.stderr or done.stdout}"
            )
        return done

    def init(self) -> None:
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base_dir, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.base_dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast`` terminates every session (what a restart does); ``immediate`` is a
        crash."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop")

    def destroy(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment for a ``manage.py`` or gunicorn process of this project."""
    env = dict(os.environ)
    for name in ("API_THROTTLE_ANON", "API_THROTTLE_USER", "DEBUG", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            # The test process's own Redis databases (one pair per xdist worker).
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "REDIS_CACHE_URL": settings.CACHES["default"]["LOCATION"],
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # The payment breaker's state of this server only (it lives in Redis).
            "PAYMENT_BREAKER_NAMESPACE": f"fault-test-{uuid.uuid4().hex}",
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed argument lists
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Gunicorn:
    """The project's gunicorn (``config/gunicorn.conf.py``) on 127.0.0.1:<free port>."""

    def __init__(self, env: dict[str, str], log_dir: Path, *, workers: int = 2):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir) / "gunicorn.log"
        self.env = dict(env)
        metrics_dir = Path(log_dir) / "prometheus"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        self.env.update(
            {
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_THREADS": "1",
                "GUNICORN_ACCESSLOG": str(Path(log_dir) / "access.log"),
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            }
        )
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = start_gunicorn(
                env=self.env, log=self._log, base_url=self.base_url, timeout=timeout
            )
        except RuntimeError as error:
            raise RuntimeError(f"{error}: {self.log_tail(2000)}") from None

    def stop(self) -> None:
        stop_gunicorn(self.proc, grace=20)
        if getattr(self, "_log", None):
            self._log.close()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
