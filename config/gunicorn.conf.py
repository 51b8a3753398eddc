"""gunicorn settings; every value can be overridden from the environment."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Threaded workers (gthread) keep client connections alive (sync workers close them after
# every answer) and overlap one request's database waits with another's work: beside the
# peer shop, 3 workers x 4 threads served 2.0x its checkouts/s where 3 sync workers served
# 1.6x, at the same server CPU per checkout (docs/performance.md, "Against the peer").
# GUNICORN_THREADS=1 runs sync workers, whose worker timeout also aborts a request that
# hangs; a gthread worker's timeout only catches a worker that stops answering as a whole
# (each request's own bounds then apply: PAYMENT_DEADLINE_SECONDS, the database's
# statement_timeout).
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
# The worker timeout is GUNICORN_TIMEOUT as read and checked by the settings (which refuse
# a PAYMENT_DEADLINE_SECONDS that does not fit inside it): importing them here stops
# gunicorn at start-up on such settings, before any worker boots.
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from config.settings import GUNICORN_TIMEOUT  # noqa: E402

timeout = GUNICORN_TIMEOUT
graceful_timeout = 20
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))


def child_exit(server, worker):
    """Drop a dead worker's live-gauge files so /metrics does not count it any more."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# gunicorn's control socket lives at one path per user by default, so a second instance
# on the same machine (another PORT) would take over the first one's; it is not used here.
control_socket_disable = True
