"""A real PgBouncer in transaction pooling mode in front of the shared PostgreSQL server.

Debian's ``pgbouncer`` package (1.18: no prepared statements in transaction mode;
``make test`` installs it when missing) runs in the foreground from a configuration
written into a fresh temporary directory, listening on a free port of 127.0.0.1. Every
database of the server is reachable through it (the ``*`` fallback entry), so a test
database that pytest-django creates is too. Each server connection it opens gets the
test suite's timeouts from ``connect_query``, as a deployment gets its own
(docs/deployment.md, "PgBouncer"). Clients are trusted (``auth_type = trust``) and
PgBouncer logs in to the server as the same user without a password, as the test suite
does on its own (the local server trusts 127.0.0.1). PgBouncer refuses to run as root: when the tests run
as root it drops to the ``postgres`` user (``-u``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.support.processes import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# The test suite's timeouts (config/test_settings.py sets the same ones as startup
# parameters on a direct connection).
CONNECT_QUERY = "SET lock_timeout = 5000; SET statement_timeout = 60000"


class PgBouncer:
    """``pgbouncer`` with ``pool_mode = transaction`` and ``pool_size`` server connections
    per database and user, in front of ``server_host:server_port``."""

    def __init__(
        self,
        *,
        server_host: str = "127.0.0.1",
        server_port: int = 5432,
        user: str = "postgres",
        pool_size: int = 5,
        max_client_conn: int = 200,
    ) -> None:
        self.server_host = server_host
        self.server_port = server_port
        self.user = user
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.port = free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix="pgbouncer-test-"))
        self.log_file = self.base_dir / "pgbouncer.log"
        self.proc: subprocess.Popen | None = None

    def config(self) -> str:
        return f"""\
[databases]
* = host={self.server_host} port={self.server_port} connect_query='{CONNECT_QUERY}'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.base_dir / "userlist.txt"}
admin_users = {self.user}
pool_mode = transaction
default_pool_size = {self.pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {self.max_client_conn}
server_lifetime = 3600
server_idle_timeout = 60
query_wait_timeout = 120
logfile = {self.log_file}
log_connections = 0
log_disconnections = 0
"""

    def start(self, timeout: float = 20) -> None:
        (self.base_dir / "pgbouncer.ini").write_text(self.config())
        (self.base_dir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        cmd = [PGBOUNCER, str(self.base_dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for path in (self.base_dir, *self.base_dir.iterdir()):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            cmd[1:1] = ["-u", "postgres"]
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argument list
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pgbouncer not ready: {self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (immediate shutdown), SIGKILL if it lingers; then the directory goes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def behind(self, database_url: str) -> str:
        """``database_url`` (a URL of the server behind it) through this PgBouncer."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{self.port}"))

    def admin(self, command: str) -> list[dict]:
        """Rows of a PgBouncer console command (``SHOW POOLS``, ``SHOW STATS``, ...)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(command)
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def pool(self, dbname: str) -> dict | None:
        """The ``SHOW POOLS`` row of ``dbname``, None before its first connection."""
        for row in self.admin("SHOW POOLS"):
            if row["database"] == dbname and row["user"] == self.user:
                return row
        return None

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")[-chars:]
        return ""
