"""Work run at the same moment in several threads, each with its own database connection
(a Barrier lines them up), as concurrent requests or job runs would be."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import Model


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


@contextmanager
def row_locked(model: type[Model], pk: Any, *, hold_timeout: float = 30) -> Iterator[None]:
    """Holds ``SELECT … FOR UPDATE`` of one row in another thread (its own connection and
    transaction) for as long as the block runs, as a concurrent request holding it would;
    the lock is taken before the block starts."""
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                model.objects.select_for_update().get(pk=pk)
                holding.set()
                done.wait(timeout=hold_timeout)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(timeout=10), f"{model.__name__} {pk} was not locked"
        yield
    finally:
        done.set()
        thread.join(timeout=hold_timeout)
