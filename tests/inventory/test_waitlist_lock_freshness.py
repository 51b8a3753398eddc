"""The waitlist counter a freeing transaction reads is the one committed by whoever held
the stock row before it: a release, or a reserve that reclaims a lapsed hold, that waited
for a join's lock offers the freed units to the entry that join made, in the same transaction (SPEC §15)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from inventory import services
from inventory.errors import InsufficientStock
from inventory.models import Reservation, StockLevel, WaitlistEntry, WaitlistStatus
from tests.support.factories import CartFactory
from tests.support.stock import assert_stock_invariants, stocked

pytestmark = pytest.mark.django_db(transaction=True)


def _dsn() -> str:
    settings = connection.settings_dict
    return f"host={settings['HOST'] or '127.0.0.1'} port={settings['PORT'] or 5432} dbname={settings['NAME']} user={settings['USER']}"


def _join_held_open(
    stock: StockLevel, cart_id, quantity: int, ready: threading.Event, go: threading.Event
) -> None:
    """What a join does, by hand, holding its locks until ``go``: lock the product's stock
    row, add a waiting entry, raise the counter; then commit."""
    with psycopg.connect(_dsn(), autocommit=False) as conn:
        conn.execute("SELECT id FROM inventory_stocklevel WHERE id = %s FOR UPDATE", [stock.id])
        now = timezone.now()
        conn.execute(
            "INSERT INTO inventory_waitlistentry (product_id, cart_id, quantity, status, created_at, updated_at)"
            " VALUES (%s, %s, %s, 'waiting', %s, %s)",
            [stock.product_id, cart_id, quantity, now, now],
        )
        conn.execute(
            "UPDATE inventory_stocklevel SET waitlisted = %s WHERE id = %s", [quantity, stock.id]
        )
        ready.set()
        go.wait(30)
        conn.commit()


@pytest.mark.parametrize("freeing", ["release", "reclaim"])
def test_a_freeing_that_waited_for_a_join_offers_to_the_new_entry(freeing):
    stock = stocked(on_hand=2)
    holder, waiter = CartFactory(), CartFactory()
    held = services.reserve(
        lines=[services.ReservationLine(stock.product_id, None, 2)],
        ttl_seconds=60,
        cart_id=holder.id,
    )
    if freeing == "reclaim":
        Reservation.objects.filter(id=held[0].id).update(expires_at=timezone.now())
    outcome = []
    ready, go = threading.Event(), threading.Event()
    joiner = threading.Thread(target=_join_held_open, args=(stock, waiter.id, 2, ready, go))
    joiner.start()
    assert ready.wait(30)

    def free() -> None:
        try:
            if freeing == "release":
                services.release(reservation_ids=[held[0].id], reason="api")
            else:
                # Another shopper's reserve waits, reclaims the lapsed hold, and must find
                # the freed units offered to the entry that was there first.
                services.reserve(
                    lines=[services.ReservationLine(stock.product_id, None, 1)],
                    ttl_seconds=60,
                    cart_id=CartFactory().id,
                )
        except InsufficientStock as error:
            outcome.append(error)
        finally:
            connection.close()

    freer = threading.Thread(target=free)
    freer.start()
    time.sleep(0.5)  # the freeing transaction now waits for the stock row
    go.set()
    joiner.join(30)
    freer.join(30)

    if freeing == "reclaim":
        # Refused: the units are the entry's (a stale counter would have let it take
        # one). The refusal rolls its reclaim back with it, so the lapsed hold is the
        # sweeper's to end, and the sweeper offers its units.
        assert len(outcome) == 1
        assert WaitlistEntry.objects.get(cart=waiter).status == WaitlistStatus.WAITING
        services.expire_due(batch_size=10)
    else:
        assert outcome == []
    entry = WaitlistEntry.objects.get(cart=waiter)
    assert entry.status == WaitlistStatus.OFFERED
    assert entry.offer_reservations.filter(status="pending").get().quantity == 2
    stock.refresh_from_db()
    assert (stock.reserved, stock.waitlisted) == (2, 0)
    assert_stock_invariants()
