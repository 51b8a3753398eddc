"""gunicorn settings; every value can be overridden from the environment."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
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
