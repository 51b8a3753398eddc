"""The orphan sweeper (SPEC §9): release reservations that no checkout and no order holds.

Orphaned reservation: ``pending``, held for a cart that is not in ``checkout``, and not
linked to an order (``Reservation.order``). Nothing will ever
confirm or release it, so the stock would stay held until its expiry; it is released
with reason ``orphaned`` and counted in ``reservations_orphaned_total`` (which should stay
at zero: every orphan is a bug somewhere upstream). Three kinds of pending reservation are
deliberately not orphans:

* a waitlist offer (``Reservation.waitlist_entry`` still ``offered``): it is held for an
  active cart until the shopper starts checkout or the offer lapses (SPEC §15);

* those without a cart: they belong to a client of the internal reservations API, which
  chose their TTL (API.md ``ttl_minutes``) and confirms or releases them itself; when
  they lapse the expiry sweeper ends them;
* those of a cart with a captured payment and no order: reconciliation still needs them
  to write the order (SPEC §7.4), so no cleanup job touches such a cart.

Locks: the sweeper locks the Cart row first (``SKIP LOCKED``: a cart a shopper is working
on is left for the next run), then ``inventory.services.release`` locks stock rows and
reservations in ascending pk order. Each cart is its own short transaction, so the
sweeper never holds a hot stock row for longer than one cart's lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from carts.models import Cart, CartStatus
from core import metrics
from core.jobs import NEVER_SWALLOWED, Batch, Job, JobRun, run_batches
from inventory import services
from inventory.models import ReleaseReason, Reservation, ReservationStatus, WaitlistStatus
from payments.models import Payment

logger = logging.getLogger("checkout.orphans")

OnBatch = Callable[[JobRun, Batch], None] | None


def _awaiting_reconciliation(cart_ref: OuterRef) -> Exists:
    return Exists(Payment.objects.captured_without_order().filter(cart_id=cart_ref))


def orphaned_reservations() -> QuerySet[Reservation]:
    """Pending reservations of a cart not in checkout, with no order (module docstring)."""
    return (
        Reservation.objects.filter(
            status=ReservationStatus.PENDING,
            cart__isnull=False,
            order__isnull=True,
        )
        .exclude(cart__status=CartStatus.CHECKOUT)
        .exclude(_awaiting_reconciliation(OuterRef("cart_id")))
        # A waitlist offer waits for its cart to start checkout (SPEC §15).
        .exclude(waitlist_entry__status=WaitlistStatus.OFFERED)
    )


def _release_orphans_of(cart_id: UUID, *, actor: str) -> int | None:
    """Releases the orphaned reservations of one cart; ``None`` if the cart is locked by
    someone else or no longer qualifies (it went back into checkout, or got a captured
    payment to reconcile). Runs in the caller's transaction."""
    cart = (
        Cart.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)  # carts.locks
        .filter(id=cart_id)
        .exclude(status=CartStatus.CHECKOUT)
        .exclude(_awaiting_reconciliation(OuterRef("id")))
        .only("id", "status")
        .first()
    )
    if cart is None:
        return None
    # Read under the cart lock: the cart's status cannot change until we commit.
    ids = list(
        orphaned_reservations().filter(cart_id=cart_id).order_by("id").values_list("id", flat=True)
    )
    if not ids:
        return 0
    # services.release locks the stock rows, re-reads the reservations under lock and
    # skips any that ended meanwhile (an expiry sweeper may have got there first).
    reservations = services.release(reservation_ids=ids, reason=ReleaseReason.ORPHANED, actor=actor)
    released = [
        r
        for r in reservations
        if r.status == ReservationStatus.RELEASED and r.release_reason == ReleaseReason.ORPHANED
    ]
    if released:
        count = len(released)
        transaction.on_commit(lambda: metrics.reservations_orphaned_total.inc(count))
        logger.warning(
            "reservations.orphaned",
            extra={
                "event": "reservations.orphaned",
                "cart_id": str(cart_id),
                "cart_status": cart.status,
                "reservation_ids": [r.id for r in released],
                "actor": actor,
            },
        )
    return len(released)


def release_orphaned_reservations(
    *,
    batch_size: int,
    max_batches: int | None = None,
    actor: str = "sweeper",
    on_batch: OnBatch = None,
) -> JobRun:
    """Releases orphaned reservations (reason ``orphaned``), ``batch_size`` carts per
    batch, each cart in its own short transaction. A cart that is locked, or whose
    release fails, is left for the next run (the failure is logged and counted)."""
    passed: set[UUID] = set()  # busy or failed this run: not taken up again

    def step() -> Batch:
        cart_ids = list(
            orphaned_reservations()
            .exclude(cart_id__in=passed)
            .order_by("cart_id")
            .values_list("cart_id", flat=True)
            .distinct()[:batch_size]
        )
        batch = Batch(seen=len(cart_ids), exhausted=len(cart_ids) < batch_size)
        for cart_id in cart_ids:
            try:
                with transaction.atomic():
                    released = _release_orphans_of(cart_id, actor=actor)
            except NEVER_SWALLOWED:
                raise
            except Exception:
                logger.exception(
                    "reservations.orphaned_release_failed",
                    extra={
                        "event": "reservations.orphaned_release_failed",
                        "cart_id": str(cart_id),
                    },
                )
                batch.errors += 1
                batch.failed.append(str(cart_id))
                passed.add(cart_id)
                continue
            if released is None:
                batch.skipped += 1
                passed.add(cart_id)
            else:
                batch.done += released
        return batch

    return run_batches(
        "release_orphaned_reservations", step, max_batches=max_batches, on_batch=on_batch
    )


RELEASE_ORPHANED_RESERVATIONS = Job(
    name="release_orphaned_reservations",
    noun="reservations",
    done_verb="released",
    dry_verb="would release",
    count=lambda: orphaned_reservations().count(),
    run=release_orphaned_reservations,
)
