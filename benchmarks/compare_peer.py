"""The project beside the Oscar peer: the same checkout load on the same machine, run
alternately (ours, peer, ours, peer, ...), and the ratios of the two.

*Ours* is the flash-sale benchmark's uniform case (``benchmarks/flash_sale.py``: create
cart, ``--lines`` add-line requests, start checkout, PATCH address + payment, confirm with
an ``Idempotency-Key``: 7 requests for 3 lines; holds, payment, event log, metrics and
JSON logs all on; no shopper abandons or is declined), followed by its database audit.
*The peer* is ``run.sh`` of the stock django-oscar shop in ``--peer-dir`` (5 requests per
checkout for 3 lines, no holds, no payment), which checks its own stock afterwards.

Both sides get the same shopper count, the same worker (process) count and the same
client connection policy: each client keeps a connection alive when the server lets it
(urllib3 pool on our side, aiohttp connector on the peer's); a server that closes after
every answer (gunicorn's sync worker, the peer's) makes the client open one per request.
Server CPU per checkout is defined alike on both sides: CPU time (user + system, from
``/proc``) of the server's process tree and of the PostgreSQL backends of its database
during the load, divided by completed checkouts.

Our server is one of (``--ours``, repeatable; each is paired with its own peer run)::

    sync           gunicorn, config/gunicorn.conf.py, sync workers (1 thread each)
    gthread:N      gunicorn, config/gunicorn.conf.py, gthread workers of N threads
    granian:N      granian (WSGI interface), N blocking threads per worker, access log on
    default        config/gunicorn.conf.py as `make run` starts it (with --workers)

A round runs every ``--ours`` entry, each followed by a peer run; ``--rounds`` rounds.
Per pair it prints checkouts/s and server CPU ms per checkout of each side and the
ratios ours/peer; then, per server, the ratios of the summed figures over every round
(completed checkouts / seconds, CPU / checkouts). ``--json-lines`` prints one JSON
object per run, per pair and per summary instead (machine-readable, one per line).

Run from the repository root (about 2 minutes per pair with the default 30 s load)::

    .venv/bin/python benchmarks/compare_peer.py --rounds 2
    .venv/bin/python benchmarks/compare_peer.py --ours sync --ours gthread:4 --rounds 2

Exit status: 0 when every run of both sides passed its own checks, 1 otherwise (a set-up
error, such as a busy port, stops the run with a message and status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
GUNICORN = str(VENV_BIN / "gunicorn") if (VENV_BIN / "gunicorn").exists() else "gunicorn"
DEFAULT_PEER_DIR = ROOT.parent / "shared" / "peers" / "oscar"


# --- what our side runs on -----------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """One way of serving ``config.wsgi``: ``kind`` sync | gthread | granian | default."""

    kind: str
    threads: int = 1

    @classmethod
    def parse(cls, text: str) -> ServerSpec:
        kind, _, threads = text.partition(":")
        if kind not in ("sync", "gthread", "granian", "default"):
            raise argparse.ArgumentTypeError(f"unknown server {text!r}")
        if kind in ("sync", "default"):
            if threads:
                raise argparse.ArgumentTypeError(f"{kind} takes no thread count")
            return cls(kind)
        try:
            n = int(threads or "1")
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad thread count in {text!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError("thread count must be >= 1")
        return cls(kind, n)

    def __str__(self) -> str:
        return self.kind if self.kind in ("sync", "default") else f"{self.kind}:{self.threads}"


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class OursServer:
    """``config.wsgi`` served as ``spec`` says, on 127.0.0.1:``port``, in a session of
    its own (so that stopping it reaches every worker)."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        port: int,
        workers: int,
        env: dict[str, str],
        log_dir: str,
        extra_pythonpath: str,
    ):
        self.spec, self.port, self.workers = spec, port, workers
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = Path(log_dir) / "server.log"
        self.access_log = Path(log_dir) / "access.log"
        self.env = dict(env)
        self.env.update({"HOST": "127.0.0.1", "PORT": str(port)})
        if extra_pythonpath:
            self.env["PYTHONPATH"] = os.pathsep.join(
                p for p in (extra_pythonpath, self.env.get("PYTHONPATH", "")) if p
            )
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        s = self.spec
        if s.kind == "granian":
            return [
                PYTHON,
                "-m",
                "granian",
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--blocking-threads",
                str(s.threads),
                "--no-ws",
                "--access-log",
                "config.wsgi:application",
            ]
        self.env["WEB_CONCURRENCY"] = str(self.workers)
        self.env["GUNICORN_ACCESSLOG"] = str(self.access_log)
        command = [GUNICORN, "config.wsgi", "-c", "config/gunicorn.conf.py"]
        if s.kind == "sync":
            self.env["GUNICORN_THREADS"] = "1"
            command += ["--worker-class", "sync"]
        elif s.kind == "gthread":
            self.env["GUNICORN_THREADS"] = str(s.threads)
            command += ["--worker-class", "gthread"]
        return command

    def start(self, timeout: float = 90) -> None:
        import urllib3

        if not port_is_free(self.port):
            raise SystemExit(f"port {self.port} is busy; choose another --ours-port")
        command = self.command()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        http = urllib3.PoolManager(retries=False, timeout=2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.spec} exited early; see {self.log_path}")
            try:
                if http.request("GET", f"{self.base_url}/healthz").status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.spec} did not become healthy in {timeout}s; see {self.log_path}")

    def stop(self, grace: float = 30) -> None:
        """SIGTERM (a graceful stop for every server here), SIGKILL of the session after
        ``grace`` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()


def tcp_active_opens() -> int:
    """TCP connections this machine opened since boot (``Tcp: ActiveOpens`` of
    ``/proc/net/snmp``): every process's, so a count over a run includes other work."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("ActiveOpens")])


def run_ours_once(a: argparse.Namespace) -> int:
    """One run of our side, in this (child) process: the flash-sale benchmark's steps
    with the server of ``--run-ours``; writes the flash-sale report to ``--report``."""
    from benchmarks import flash_sale as fs
    from benchmarks import procstat

    spec: ServerSpec = a.run_ours
    opts = fs.parse_args(
        [
            "--mode",
            "uniform",
            "--shoppers",
            str(a.shoppers),
            "--lines",
            str(a.lines),
            "--duration",
            str(a.duration),
            "--checkouts",
            "1000000",
            "--abandon-rate",
            "0",
            "--decline-rate",
            "0",
            "--workers",
            str(a.workers),
            "--threads",
            str(spec.threads),
            "--database-url",
            a.database_url,
            "--broker-url",
            a.broker_url,
            "--cache-url",
            a.cache_url,
        ]
    )
    log_dir = tempfile.mkdtemp(prefix="compare-peer-")
    metrics_dir = Path(log_dir) / "prometheus"
    metrics_dir.mkdir()
    env = fs.server_env(opts, str(metrics_dir))
    fs.recreate_database(opts.database_url)
    migrated = fs.manage(env, "migrate", "--noinput")
    if migrated.returncode != 0:
        print(migrated.stdout, migrated.stderr, file=sys.stderr)
        return 2
    fs.setup_django(env)
    catalog = fs.seed(opts)
    server = OursServer(
        spec,
        port=a.ours_port,
        workers=a.workers,
        env=env,
        log_dir=log_dir,
        extra_pythonpath=a.extra_pythonpath,
    )

    class TreeCpuMeter(fs.CpuMeter):
        """The flash-sale meter, counting the server's whole process tree."""

        def _gunicorn(self) -> float:
            pids = [self.server_pid, *procstat.descendants(self.server_pid)]
            return sum(procstat.cpu_seconds(p) for p in pids)

    try:
        server.start()
        load_before = fs.machine_load()
        opens_before = tcp_active_opens()
        meter = TreeCpuMeter(server.proc.pid, opts.database_url)
        meter.start()
        load = fs.run_load(opts, server.base_url, catalog)
        meter.stop(load.elapsed)
        opens = tcp_active_opens() - opens_before
        load_after = fs.machine_load()
    finally:
        server.stop()
    result = fs.audit(opts, env, catalog)
    report = fs.build_report(opts, load, result, load_before, load_after, meter.result)
    report["safety"] = fs.safety_checks(report)
    report["server"] = str(spec)
    report["tcp_active_opens_machine"] = opens
    if all(report["safety"].values()):
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        report["log_dir"] = log_dir  # kept for a failed run
    Path(a.report).write_text(json.dumps(report, default=str))
    return 0


# --- one run of each side, as the parent sees it -------------------------------------


@dataclass
class RunResult:
    side: str  # "ours" | "peer"
    server: str
    checkouts: int
    elapsed_s: float
    server_cpu_s: float
    postgres_cpu_s: float
    passed: bool
    failed_checks: list[str]
    machine_busy_pct: float | None
    loadavg_before: str
    connections_opened: int | None
    tcp_opens_machine: int | None
    detail: dict[str, Any]

    @property
    def checkouts_per_s(self) -> float:
        return self.checkouts / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def cpu_ms_per_checkout(self) -> float | None:
        return 1000 * self.server_cpu_s / self.checkouts if self.checkouts else None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "run",
            "side": self.side,
            "server": self.server,
            "checkouts": self.checkouts,
            "elapsed_s": round(self.elapsed_s, 2),
            "checkouts_per_s": round(self.checkouts_per_s, 2),
            "server_cpu_ms_per_checkout": _r(self.cpu_ms_per_checkout, 1),
            "postgres_cpu_ms_per_checkout": _r(
                1000 * self.postgres_cpu_s / self.checkouts if self.checkouts else None, 1
            ),
            "passed": self.passed,
            "failed_checks": self.failed_checks,
            "machine_busy_pct": self.machine_busy_pct,
            "loadavg_before": self.loadavg_before,
            "connections_opened": self.connections_opened,
            "tcp_active_opens_machine": self.tcp_opens_machine,
        }


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def run_ours(a: argparse.Namespace, spec: ServerSpec, say) -> RunResult:
    with tempfile.NamedTemporaryFile(prefix="compare-ours-", suffix=".json", delete=False) as f:
        report_path = f.name
    argv = [
        PYTHON,
        str(Path(__file__).resolve()),
        "--run-ours",
        str(spec),
        "--report",
        report_path,
        "--shoppers",
        str(a.shoppers),
        "--workers",
        str(a.workers),
        "--lines",
        str(a.lines),
        "--duration",
        str(a.duration),
        "--ours-port",
        str(a.ours_port),
        "--database-url",
        a.database_url,
        "--broker-url",
        a.broker_url,
        "--cache-url",
        a.cache_url,
        "--extra-pythonpath",
        a.extra_pythonpath,
    ]
    say(f"ours ({spec}): {a.shoppers} shoppers, {a.workers} workers, {a.duration:g} s")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        report = json.loads(Path(report_path).read_text())
    except (OSError, ValueError):
        raise SystemExit(
            f"our run ({spec}) failed (exit {done.returncode}):\n{done.stdout[-3000:]}"
            f"\n{done.stderr[-3000:]}"
        ) from None
    finally:
        Path(report_path).unlink(missing_ok=True)
    completed = report["outcomes"].get("completed", 0)
    elapsed = report["elapsed_s"]
    cpu = report["machine"]["cpu_during_load"]
    server_cpu_s = (cpu["gunicorn_cores"] + cpu["postgres_backends_cores"]) * elapsed
    failed = [name for name, ok in report["safety"].items() if not ok]
    return RunResult(
        side="ours",
        server=str(spec),
        checkouts=completed,
        elapsed_s=elapsed,
        server_cpu_s=server_cpu_s,
        postgres_cpu_s=cpu["postgres_backends_cores"] * elapsed,
        passed=not failed,
        failed_checks=failed,
        machine_busy_pct=cpu.get("machine_busy_pct"),
        loadavg_before=report["machine"]["loadavg_before"],
        connections_opened=None,
        tcp_opens_machine=report["tcp_active_opens_machine"],
        detail=report,
    )


def run_peer(a: argparse.Namespace, say) -> RunResult:
    run_sh = Path(a.peer_dir) / "run.sh"
    if not run_sh.exists():
        raise SystemExit(f"no peer at {run_sh}")
    if not port_is_free(a.peer_port):
        raise SystemExit(f"port {a.peer_port} is busy; choose another --peer-port")
    env = dict(os.environ)
    env["OSCAR_PEER_DB"] = a.peer_db
    if a.peer_venv:
        env["OSCAR_PEER_VENV"] = a.peer_venv
    argv = [
        str(run_sh),
        "--shoppers",
        str(a.shoppers),
        "--duration",
        str(a.duration),
        "--port",
        str(a.peer_port),
        "--workers",
        str(a.workers),
        "--",
        "--lines",
        str(a.lines),
        "--quiet",
    ]
    say(f"peer (gunicorn sync): {a.shoppers} shoppers, {a.workers} workers, {a.duration:g} s")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(
            f"the peer's run.sh failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    out = json.loads(lines[-1])
    checks = out.get("checks", {})
    failed = [name for name, ok in checks.items() if not ok]
    if done.returncode != 0 and not failed:
        failed = [f"run.sh exit {done.returncode}"]
    cpu = out.get("cpu", {})
    ok = out["checkouts_ok"]
    per = out.get("cpu_ms_per_checkout_server")
    return RunResult(
        side="peer",
        server="oscar gunicorn sync",
        checkouts=ok,
        elapsed_s=out["elapsed_s"],
        server_cpu_s=(per or 0) * ok / 1000,
        postgres_cpu_s=(cpu.get("postgres_backends_ms_per_checkout") or 0) * ok / 1000,
        passed=bool(out.get("passed")) and not failed,
        failed_checks=failed,
        machine_busy_pct=cpu.get("machine_busy_pct"),
        loadavg_before=" ".join(str(x) for x in cpu.get("loadavg_before", [])),
        connections_opened=out.get("connections_opened"),
        tcp_opens_machine=None,
        detail=out,
    )


# --- ratios --------------------------------------------------------------------------


def ratios(ours: list[RunResult], peer: list[RunResult]) -> dict[str, float | None]:
    """ours/peer of checkouts per second and of server CPU per checkout, each side's
    figures summed over its runs (so a longer run weighs more, not a noisier one)."""
    o_ok, p_ok = sum(r.checkouts for r in ours), sum(r.checkouts for r in peer)
    o_s, p_s = sum(r.elapsed_s for r in ours), sum(r.elapsed_s for r in peer)
    o_cpu, p_cpu = sum(r.server_cpu_s for r in ours), sum(r.server_cpu_s for r in peer)
    throughput = (o_ok / o_s) / (p_ok / p_s) if o_s and p_s and p_ok else None
    cpu = (o_cpu / o_ok) / (p_cpu / p_ok) if o_ok and p_ok and p_cpu else None
    return {"throughput_ratio": _r(throughput, 3), "cpu_per_checkout_ratio": _r(cpu, 3)}


def describe(r: RunResult) -> str:
    if r.connections_opened is not None:
        conns = f", client opened {r.connections_opened} connections"
    elif r.tcp_opens_machine is not None:
        conns = f", machine opened {r.tcp_opens_machine} TCP connections"
    else:
        conns = ""
    checks = "checks passed" if r.passed else "FAILED " + ", ".join(r.failed_checks)
    if not r.passed and r.detail.get("log_dir"):
        checks += f" (logs in {r.detail['log_dir']})"
    return (
        f"{r.side:<4} {r.server:<20} {r.checkouts_per_s:6.2f} checkouts/s  "
        f"{r.cpu_ms_per_checkout or float('nan'):6.1f} ms server CPU/checkout"
        f" (PostgreSQL {1000 * r.postgres_cpu_s / max(r.checkouts, 1):.1f})  "
        f"({r.checkouts} in {r.elapsed_s:.1f} s, machine {r.machine_busy_pct}% busy, "
        f"load {r.loadavg_before}{conns}; {checks})"
    )


# --- command line --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    default_db = urlunsplit(
        urlsplit(
            os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout")
        )._replace(path="/checkout_compare")
    )
    p = argparse.ArgumentParser(
        description="The project beside the Oscar peer, alternating runs, with the ratios.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--rounds", type=int, default=2, help="rounds of (ours, peer) per server")
    p.add_argument(
        "--ours",
        type=ServerSpec.parse,
        action="append",
        default=None,
        help="our server: default | sync | gthread:N | granian:N (repeatable; default: default)",
    )
    p.add_argument("--shoppers", type=int, default=32, help="concurrent shoppers, both sides")
    p.add_argument("--workers", type=int, default=3, help="server worker processes, both sides")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load per run")
    p.add_argument("--lines", type=int, default=3, help="lines per checkout, both sides")
    p.add_argument("--ours-port", type=int, default=8831)
    p.add_argument("--peer-port", type=int, default=8832)
    p.add_argument("--database-url", default=default_db, help="ours; dropped and re-created!")
    p.add_argument("--broker-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--cache-url", default="redis://127.0.0.1:6379/1")
    p.add_argument("--peer-dir", default=str(DEFAULT_PEER_DIR))
    p.add_argument("--peer-db", default="oscar_peer", help="the peer's database (oscar_peer*)")
    p.add_argument(
        "--peer-venv",
        default=os.environ.get("OSCAR_PEER_VENV", ""),
        help="the peer's virtualenv (run.sh's default when empty)",
    )
    p.add_argument(
        "--extra-pythonpath",
        default="",
        help="prepended to our server's PYTHONPATH (e.g. a granian installed with --target)",
    )
    p.add_argument("--json-lines", action="store_true", help="one JSON object per line")
    p.add_argument("--run-ours", type=ServerSpec.parse, default=None, help=argparse.SUPPRESS)
    p.add_argument("--report", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.run_ours is not None:
        return run_ours_once(a)
    if min(a.rounds, a.shoppers, a.workers, a.lines) < 1 or a.duration <= 0:
        raise SystemExit("rounds, shoppers, workers, lines and duration must be positive")
    if not a.peer_db.startswith("oscar_peer"):
        raise SystemExit("--peer-db must start with oscar_peer (run.sh drops it)")
    specs: list[ServerSpec] = a.ours or [ServerSpec("default")]

    def emit(obj: dict[str, Any], text: str) -> None:
        print(json.dumps(obj) if a.json_lines else text, flush=True)

    def say(text: str) -> None:
        print(f"[compare] {text}", file=sys.stderr, flush=True)

    runs: dict[str, tuple[list[RunResult], list[RunResult]]] = {str(s): ([], []) for s in specs}
    all_passed = True
    for n in range(1, a.rounds + 1):
        for spec in specs:
            ours = run_ours(a, spec, say)
            emit(ours.as_json() | {"round": n}, describe(ours))
            peer = run_peer(a, say)
            emit(peer.as_json() | {"round": n}, describe(peer))
            all_passed &= ours.passed and peer.passed
            runs[str(spec)][0].append(ours)
            runs[str(spec)][1].append(peer)
            pair = ratios([ours], [peer])
            emit(
                {"kind": "pair", "round": n, "server": str(spec)} | pair,
                f"  pair {n} ({spec}): throughput ours/peer {pair['throughput_ratio']}, "
                f"CPU per checkout ours/peer {pair['cpu_per_checkout_ratio']}",
            )
    emit({"kind": "config"} | _config(a), "")
    for spec, (ours_runs, peer_runs) in runs.items():
        total = ratios(ours_runs, peer_runs)
        pairs = [ratios([o], [p]) for o, p in zip(ours_runs, peer_runs, strict=True)]
        spread = {
            key: [min(p[key] for p in pairs), max(p[key] for p in pairs)]
            for key in ("throughput_ratio", "cpu_per_checkout_ratio")
            if all(p[key] is not None for p in pairs)
        }
        emit(
            {"kind": "summary", "server": spec, "pairs": len(pairs), "spread": spread} | total,
            f"overall {spec} ({len(pairs)} pairs): throughput ours/peer "
            f"{total['throughput_ratio']} (pairs {spread.get('throughput_ratio')}), "
            f"CPU per checkout ours/peer {total['cpu_per_checkout_ratio']} "
            f"(pairs {spread.get('cpu_per_checkout_ratio')}); goal >= 2 and <= 0.5",
        )
    return 0 if all_passed else 1


def _config(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "shoppers": a.shoppers,
        "workers": a.workers,
        "duration_s": a.duration,
        "lines": a.lines,
        "rounds": a.rounds,
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    sys.exit(main())
