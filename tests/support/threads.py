"""Work run at the same moment in several threads, each with its own database connection
(a Barrier lines them up), as concurrent requests or job runs would be."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_concurrently(
    count: int, work: Callable[[int], Any], *, join_timeout: float = 120
) -> list[Any]:
    """Runs ``work(i)`` in ``count`` threads released together; returns each result or the
    exception it raised, by thread. A thread still running after ``join_timeout`` seconds
    fails the test."""
    barrier = threading.Barrier(count)
    outcomes: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i] = work(i)
        except Exception as exc:  # handed to the test to assert on
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=join_timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return outcomes


def run_in_threads(*targets: Callable[[], Any]) -> list[Any]:
    """Runs the callables at the same moment, each in its own thread; returns their
    results, re-raising the first error (by position)."""
    outcomes = run_concurrently(len(targets), lambda i: targets[i](), join_timeout=60)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return outcomes
