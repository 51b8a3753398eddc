"""The periodic waitlist pass (SPEC §15): job ``serve_waitlists``.

Freed units are offered in the transaction that frees them (``services.serve_waitlists``).
That offer step takes the product's other stock rows ``SKIP LOCKED``, so a product one of
whose rows another transaction holds at that moment is left as it is; nothing offers the
units of a warehouse turned active; and a cart that closes keeps its entry's place until
units come. This job catches all of that.

A product's waitlist is *due* when its first waiting entry could move now: its quantity
is free (unpinned: over the active warehouses; pinned: in its active warehouse), or some
units are free and the entry's cart can no longer take an offer (its turn is given up),
or a pending hold of the product has lapsed (a lapsed offer passes on). Due waitlists are
served oldest queue first, ``batch_size`` per batch, each in its own short transaction:
lock every stock row of the product (waiting), check it is still due, then
``inventory.waitlist.serve_product`` (expire lapsed holds, cancel the entries of closed
carts at their turn, offer strictly in entry order, set the ``waitlisted`` counter). A
served waitlist is no longer due, so a backlog drains and a run re-enqueued by its task
does not start over on the same products.

Unlike the other sweepers this job waits for the stock row locks instead of skipping
them: a busy row is what made the product need the pass, a product's rows are held for
one short transaction at a time, and ``DATABASE_LOCK_TIMEOUT_MS`` bounds the wait (a
timeout counts as an error, logged; the product is taken up again next run). Two runs at
once are safe: the second waits for the first's locks, then finds the waitlist no longer
due (``skipped``). Every offer is logged (``waitlist.offered``) and counted in
``waitlist_offers_total``; each served waitlist is logged as ``waitlist.served`` with its
number of offers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from core.jobs import NEVER_SWALLOWED, Batch, Job, JobRun, run_batches
from inventory import locks, services, waitlist

logger = logging.getLogger("inventory.waitlist")

OnBatch = Callable[[JobRun, Batch], None] | None

# Per product with waiting entries, its first entry (head) and whether the queue could
# move: the head's quantity is free where it may be served (fits), any unit is free in an
# active warehouse (any_free), a pending hold of the product has lapsed (lapsed). Served
# by the partial index on waiting entries and the (stock_level, status) reservation index.
_DUE_SQL = """
SELECT product_id, cart_id, fits, any_free, lapsed FROM (
    SELECT head.id, head.product_id, head.cart_id,
           head.quantity <= (
               SELECT COALESCE(SUM(GREATEST(s.on_hand - s.reserved, 0)), 0)
                 FROM inventory_stocklevel s
                 JOIN inventory_warehouse w ON w.id = s.warehouse_id
                WHERE s.product_id = head.product_id AND w.is_active
                  AND (head.warehouse_id IS NULL OR s.warehouse_id = head.warehouse_id)
           ) AS fits,
           EXISTS (
               SELECT 1 FROM inventory_stocklevel s
                 JOIN inventory_warehouse w ON w.id = s.warehouse_id
                WHERE s.product_id = head.product_id AND w.is_active
                  AND s.on_hand > s.reserved
           ) AS any_free,
           EXISTS (
               SELECT 1 FROM inventory_reservation r
                 JOIN inventory_stocklevel s ON s.id = r.stock_level_id
                WHERE s.product_id = head.product_id
                  AND r.status = 'pending' AND r.expires_at <= %(now)s
           ) AS lapsed
      FROM (SELECT DISTINCT ON (e.product_id)
                   e.id, e.product_id, e.cart_id, e.quantity, e.warehouse_id
              FROM inventory_waitlistentry e
             WHERE e.status = 'waiting' {where}
             ORDER BY e.product_id, e.id) AS head
) AS queue
 WHERE fits OR any_free OR lapsed
 ORDER BY id
"""


def due_waitlists(*, only: Iterable[UUID] | None = None, passed: Iterable[UUID] = ()) -> list[UUID]:
    """Products whose waitlist the pass would serve now (module docstring), oldest queue
    first; ``only`` limits the check to those products, ``passed`` leaves products out.
    Two queries at most (the second asks the carts app which heads' carts are open)."""
    where, params = "", {"now": timezone.now()}
    if only is not None:
        where += " AND e.product_id = ANY(%(only)s::uuid[])"
        params["only"] = list(only)
    skip = list(passed)
    if skip:
        where += " AND NOT e.product_id = ANY(%(passed)s::uuid[])"
        params["passed"] = skip
    with connection.cursor() as cursor:
        cursor.execute(_DUE_SQL.format(where=where), params)
        queues = cursor.fetchall()
    # Some units free but not enough for the head: due only if the head's cart gave its
    # turn up (the offer step cancels such an entry when it reaches it).
    only_free = {cart for _, cart, fits, any_free, lapsed in queues if not (fits or lapsed)}
    gate = services._cart_gate
    closed = only_free - gate(only_free) if only_free and gate is not None else set()
    return [
        product for product, cart, fits, _, lapsed in queues if fits or lapsed or cart in closed
    ]


def _serve(product_id: UUID, *, actor: str) -> int | None:
    """Serves one product's waitlist in its own transaction; the number of offers made,
    or ``None`` if it was no longer due once its stock rows were locked."""
    with transaction.atomic():
        locks.lock_product_rows([product_id])
        if not due_waitlists(only=[product_id]):
            return None
        return waitlist.serve_product(product_id=product_id, actor=actor)


def serve_waitlists(
    *,
    batch_size: int,
    max_batches: int | None = None,
    actor: str = "sweeper",
    on_batch: OnBatch = None,
) -> JobRun:
    """Serves every due waitlist (module docstring), ``batch_size`` products per batch,
    each product in its own transaction. A product whose pass fails is logged
    (``waitlist.serve_failed``), counted and left for the next run."""
    passed: set[UUID] = set()  # taken up this run: not taken up again

    def step() -> Batch:
        product_ids = due_waitlists(passed=passed)[:batch_size]
        batch = Batch(seen=len(product_ids), exhausted=len(product_ids) < batch_size)
        for product_id in product_ids:
            passed.add(product_id)
            try:
                offered = _serve(product_id, actor=actor)
            except NEVER_SWALLOWED:
                raise
            except Exception:
                logger.exception(
                    "waitlist.serve_failed",
                    extra={"event": "waitlist.serve_failed", "product_id": str(product_id)},
                )
                batch.errors += 1
                batch.failed.append(str(product_id))
                continue
            if offered is None:
                batch.skipped += 1
                continue
            batch.done += 1
            logger.info(
                "waitlist.served",
                extra={
                    "event": "waitlist.served",
                    "product_id": str(product_id),
                    "offers": offered,
                    "actor": actor,
                },
            )
        return batch

    return run_batches("serve_waitlists", step, max_batches=max_batches, on_batch=on_batch)


SERVE_WAITLISTS = Job(
    name="serve_waitlists",
    noun="waitlists",
    done_verb="served",
    dry_verb="would serve",
    count=lambda: len(due_waitlists()),
    run=serve_waitlists,
)
