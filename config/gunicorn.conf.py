"""gunicorn settings; every value can be overridden from the environment."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
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
