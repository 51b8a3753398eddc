"""Checkout sweepers (SPEC §9): abandon expired checkouts, abandon stale checkouts,
reconcile captured payments. (``ops.jobs`` lists every cleanup job in the order
``manage.py cleanup`` runs them.)

Both abandon jobs pick carts in ``checkout`` in an ordered batch, then take each cart in
its own short transaction with ``SELECT ... FOR UPDATE SKIP LOCKED`` and re-check that it
still qualifies under the lock: a cart a shopper (or another worker) is working on is
skipped and left for the next run, a cart another worker already abandoned no longer
qualifies, so every cart is abandoned once however many workers sweep. The work on one
cart is ``checkout.services.abandon_checkout`` (cart lock, then its reservations are
expired/released through ``inventory.services``, then the cart becomes ``abandoned``).
One transaction per cart keeps every stock row lock short: a batch-wide transaction
would hold the stock rows of the first cart until the last one was done.

No cleanup job touches a cart whose payment is in flight (``pending``/``authorized`` and
younger than ``CHECKOUT_PAYMENT_TTL_SECONDS``, as ``checkout.confirm`` counts it) or
captured without an order: the shopper's confirm, or reconciliation (or staff), still
needs its reservations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from carts.models import Cart, CartStatus
from checkout.reconcile import GRACE_SECONDS, reconcile_captured_payments
from checkout.services import abandon_checkout
from core.jobs import NEVER_SWALLOWED, Batch, Job, JobRun, run_batches
from payments.models import Payment

logger = logging.getLogger("checkout.cleanup")

OnBatch = Callable[[JobRun, Batch], None] | None

REASON_EXPIRED = "expired"
REASON_STALE = "stale"


def _payment_in_progress(now: datetime) -> Exists:
    """A payment of the cart in flight (as ``checkout.confirm`` counts it) or captured
    without an order (reconciliation's, flagged for staff or not)."""
    return Exists(Payment.objects.holding_cart(now=now).filter(cart_id=OuterRef("id")))


def expired_checkouts(now: datetime | None = None) -> QuerySet[Cart]:
    """Carts in ``checkout`` whose reservations' expiry (``expires_at``) has passed."""
    now = now or timezone.now()
    return Cart.objects.filter(status=CartStatus.CHECKOUT, expires_at__lt=now).exclude(
        _payment_in_progress(now)
    )


def stale_checkouts(now: datetime | None = None) -> QuerySet[Cart]:
    """Carts in ``checkout`` started more than ``CHECKOUT_ABANDON_AFTER_SECONDS`` ago,
    whatever their expiry."""
    now = now or timezone.now()
    started_before = now - timedelta(seconds=settings.CHECKOUT_ABANDON_AFTER_SECONDS)
    return Cart.objects.filter(
        status=CartStatus.CHECKOUT, checkout_started_at__lt=started_before
    ).exclude(_payment_in_progress(now))


def payments_to_reconcile(now: datetime | None = None) -> QuerySet[Payment]:
    """What ``reconcile_captured_payments`` would handle now: captured payments without an
    order past the grace period, and payments left in flight by an interrupted confirm;
    in both cases not yet flagged for staff."""
    now = now or timezone.now()
    overdue = Payment.objects.captured_without_order().filter(
        needs_attention=False, captured_at__lte=now - timedelta(seconds=GRACE_SECONDS)
    )
    return overdue | Payment.objects.stale_in_flight(now=now)


def _abandon_one(
    cart_id: UUID, *, due: Callable[[], QuerySet[Cart]], reason: str, actor: str
) -> bool:
    """Abandons one cart if it is not locked and still ``due``; False if it was skipped."""
    with transaction.atomic():
        locked = (
            due()
            .filter(id=cart_id)
            .select_for_update(skip_locked=True, of=("self",), no_key=True)  # carts.locks
            .values_list("id", flat=True)
            .first()
        )
        if locked is None:
            return False
        return abandon_checkout(cart_id=cart_id, reason=reason, actor=actor)


def _abandon(
    job: str,
    *,
    due: Callable[[], QuerySet[Cart]],
    order_by: tuple[str, ...],
    reason: str,
    batch_size: int,
    max_batches: int | None,
    actor: str,
    on_batch: OnBatch,
) -> JobRun:
    passed: set[UUID] = set()  # busy or failed this run: not taken up again

    def step() -> Batch:
        cart_ids = list(
            due()
            .exclude(id__in=passed)
            .order_by(*order_by)
            .values_list("id", flat=True)[:batch_size]
        )
        batch = Batch(seen=len(cart_ids), exhausted=len(cart_ids) < batch_size)
        for cart_id in cart_ids:
            try:
                abandoned = _abandon_one(cart_id, due=due, reason=reason, actor=actor)
            except NEVER_SWALLOWED:
                raise
            except Exception:
                logger.exception(
                    "checkout.abandon_failed",
                    extra={"event": "checkout.abandon_failed", "cart_id": str(cart_id), "job": job},
                )
                batch.errors += 1
                batch.failed.append(str(cart_id))
                passed.add(cart_id)
                continue
            if abandoned:
                batch.done += 1
            else:
                batch.skipped += 1
                passed.add(cart_id)
        return batch

    return run_batches(job, step, max_batches=max_batches, on_batch=on_batch)


def abandon_expired_checkouts(
    *,
    batch_size: int,
    max_batches: int | None = None,
    actor: str = "sweeper",
    on_batch: OnBatch = None,
) -> JobRun:
    """Abandons carts in ``checkout`` whose ``expires_at`` has passed (reason
    ``expired``): their pending reservations are expired, the cart becomes ``abandoned``.
    ``batch_size`` carts per batch, one short transaction per cart."""
    return _abandon(
        "abandon_expired_checkouts",
        due=expired_checkouts,
        order_by=("expires_at", "id"),
        reason=REASON_EXPIRED,
        batch_size=batch_size,
        max_batches=max_batches,
        actor=actor,
        on_batch=on_batch,
    )


def abandon_stale_checkouts(
    *,
    batch_size: int,
    max_batches: int | None = None,
    actor: str = "sweeper",
    on_batch: OnBatch = None,
) -> JobRun:
    """Abandons carts that entered ``checkout`` more than ``CHECKOUT_ABANDON_AFTER_SECONDS``
    ago (reason ``stale``), releasing their pending reservations."""
    return _abandon(
        "abandon_stale_checkouts",
        due=stale_checkouts,
        order_by=("checkout_started_at", "id"),
        reason=REASON_STALE,
        batch_size=batch_size,
        max_batches=max_batches,
        actor=actor,
        on_batch=on_batch,
    )


def reconcile_payments(
    *,
    batch_size: int,
    max_batches: int | None = None,
    actor: str = "sweeper",
    on_batch: OnBatch = None,
) -> JobRun:
    """Finishes the orders of captured payments that have none (or flags them for staff):
    ``checkout.reconcile.reconcile_captured_payments``, ``batch_size`` carts at a time.
    A payment it cannot finish is flagged for staff and not taken up again, so the loop
    ends. ``actor`` is unused: reconciliation records itself as ``reconcile``."""

    def step() -> Batch:
        handled = reconcile_captured_payments(batch_size=batch_size)
        # Fewer than batch_size handled: both of its queues (carts with captured payments,
        # interrupted payments) were shorter than a batch.
        return Batch(seen=handled, done=handled, exhausted=handled < batch_size)

    return run_batches("reconcile_payments", step, max_batches=max_batches, on_batch=on_batch)


ABANDON_EXPIRED_CHECKOUTS = Job(
    name="abandon_expired_checkouts",
    noun="carts",
    done_verb="abandoned",
    dry_verb="would abandon",
    count=lambda: expired_checkouts().count(),
    run=abandon_expired_checkouts,
)

ABANDON_STALE_CHECKOUTS = Job(
    name="abandon_stale_checkouts",
    noun="carts",
    done_verb="abandoned",
    dry_verb="would abandon",
    count=lambda: stale_checkouts().count(),
    run=abandon_stale_checkouts,
)

RECONCILE_PAYMENTS = Job(
    name="reconcile_payments",
    noun="payments",
    done_verb="handled (order written or flagged for staff)",
    dry_verb="would handle",
    count=lambda: payments_to_reconcile().count(),
    run=reconcile_payments,
)
