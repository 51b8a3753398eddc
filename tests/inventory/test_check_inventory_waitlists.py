"""``manage.py check_inventory`` and the waitlists (SPEC §15): it finds a drifted
``waitlisted`` counter, an offer nothing holds, a reservation holding an offer that is not
its own and a missed offer, and ``--repair`` puts right what it can. Drift is made behind
the engine's back with raw SQL, as a bug or a manual edit would."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from carts.locks import lock_cart
from carts.models import CartItem
from inventory import catalog, services, waitlist
from inventory.management.commands.check_inventory import Command
from inventory.models import (
    Product,
    Reservation,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
    Warehouse,
)
from tests.support import reserve, stocked
from tests.support.factories import CartFactory, StockLevelFactory, WarehouseFactory
from tests.support.jobs import metric

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("check_inventory", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def join(cart, product: Product, quantity: int, warehouse: Warehouse | None = None):
    """The cart joins the product's waitlist, under the cart lock as the API does."""
    with transaction.atomic():
        lock_cart(cart.id)
        return waitlist.join(
            cart_id=cart.id, product=product, warehouse=warehouse, quantity=quantity, actor="t"
        ).entry


def sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def status(entry: WaitlistEntry) -> str:
    entry.refresh_from_db()
    return entry.status


@pytest.fixture
def sold_out():
    """A product with 2 units, both held by a shopper; a cart waits for 2."""
    stock = stocked(on_hand=2, sku="HOT-1")
    hold = reserve(stock, 2)
    entry = join(CartFactory(), stock.product, 2)
    return stock, hold, entry


def offer_of(entry: WaitlistEntry) -> Reservation:
    return Reservation.objects.get(waitlist_entry=entry, status=ReservationStatus.PENDING)


def test_waiting_offered_and_claimed_entries_are_clean():
    stock = stocked(on_hand=3, sku="HOT-1")
    hold = reserve(stock, 3)
    first = join(CartFactory(), stock.product, 2)
    second = join(CartFactory(), stock.product, 1)
    services.release(reservation_ids=[hold.id])  # both are offered
    third = join(CartFactory(), stock.product, 1)
    assert (status(first), status(second), status(third)) == ("offered", "offered", "waiting")
    WaitlistEntry.objects.filter(id=first.id).update(status=WaitlistStatus.CLAIMED)

    out, error = run()

    assert error is None, out
    # Open entries: the second (offered) and the third (waiting); a claimed one is done.
    assert out.splitlines() == [
        "check_inventory: 1 stock rows and 2 open waitlist entries checked, no drift"
    ]


def test_without_any_waitlist_the_summary_is_as_before():
    stocked(on_hand=3)
    out, error = run()
    assert error is None
    assert out.splitlines() == ["check_inventory: 1 stock rows checked, no drift"]


def test_a_drifted_waitlisted_counter_is_reported_and_repaired_on_every_row(check_log):
    east = WarehouseFactory(code="east")
    stock = stocked(on_hand=1, sku="HOT-2")
    other = StockLevelFactory(product=stock.product, warehouse=east, on_hand=1)
    reserve(stock, 1)
    reserve(other, 1)
    join(CartFactory(), stock.product, 3)
    assert list(StockLevel.objects.order_by("id").values_list("waitlisted", flat=True)) == [3, 3]
    sql("UPDATE inventory_stocklevel SET waitlisted = 1 WHERE id = %s", [stock.id])
    sql("UPDATE inventory_stocklevel SET waitlisted = 0 WHERE id = %s", [other.id])

    out, error = run()

    assert error is not None and error.returncode == 1
    assert "--repair" in str(error)
    assert out.splitlines() == [
        f"drift: stock {stock.id} sku=HOT-2 warehouse=default: "
        "waitlisted=1 but waiting entries want 3",
        f"drift: stock {other.id} sku=HOT-2 warehouse=east: "
        "waitlisted=0 but waiting entries want 3",
        "check_inventory: 2 stock rows and 1 open waitlist entries checked, 2 with drift",
    ]

    out, error = run("--repair")

    assert error is None, out
    assert f"repaired: stock {stock.id} sku=HOT-2 warehouse=default: waitlisted 1 -> 3" in out
    assert f"repaired: stock {other.id} sku=HOT-2 warehouse=east: waitlisted 0 -> 3" in out
    assert out.splitlines()[-1] == (
        "check_inventory: 2 stock rows and 1 open waitlist entries checked, 2 with drift, "
        "2 repaired, 0 left"
    )
    assert list(StockLevel.objects.order_by("id").values_list("waitlisted", flat=True)) == [3, 3]
    logged = [r for r in check_log if getattr(r, "event", "") == "stock.waitlisted_repaired"]
    assert sorted((r.warehouse, r.waitlisted_before, r.waitlisted) for r in logged) == [
        ("default", 1, 3),
        ("east", 0, 3),
    ]
    assert run()[1] is None


def test_a_counter_left_after_the_queue_emptied_is_drift():
    stock = stocked(on_hand=5, sku="HOT-3")
    sql("UPDATE inventory_stocklevel SET waitlisted = 2 WHERE id = %s", [stock.id])

    out, error = run()

    assert error is not None
    assert "waitlisted=2 but waiting entries want 0" in out
    # The withheld units are back for everyone once repaired.
    assert run("--repair")[1] is None
    stock.refresh_from_db()
    assert stock.waitlisted == 0


def test_both_counters_of_a_row_drifting_are_repaired_together():
    stock = stocked(on_hand=2, sku="HOT-4")
    reserve(stock, 2)
    join(CartFactory(), stock.product, 1)
    sql("UPDATE inventory_stocklevel SET reserved = 0, waitlisted = 0 WHERE id = %s", [stock.id])

    out, error = run()
    assert error is not None
    assert (
        f"drift: stock {stock.id} sku=HOT-4 warehouse=default: reserved=0 but pending "
        "reservations hold 2; waitlisted=0 but waiting entries want 1"
    ) in out.splitlines()

    out, error = run("--repair")

    assert error is None, out
    assert f"repaired: stock {stock.id} sku=HOT-4 warehouse=default: reserved 0 -> 2" in out
    assert f"repaired: stock {stock.id} sku=HOT-4 warehouse=default: waitlisted 0 -> 1" in out
    assert out.splitlines()[-1].endswith("1 with drift, 1 repaired, 0 left")
    stock.refresh_from_db()
    assert (stock.reserved, stock.waitlisted) == (2, 1)


def test_an_offer_no_reservation_holds_is_reported_and_ended_as_lapsed(
    sold_out, check_log, django_capture_on_commit_callbacks
):
    stock, hold, entry = sold_out
    services.release(reservation_ids=[hold.id])
    offer = offer_of(entry)
    # The offer's hold ended behind the engine's back (its counter kept right).
    sql("UPDATE inventory_reservation SET status = 'released' WHERE id = %s", [offer.id])
    sql("UPDATE inventory_stocklevel SET reserved = 0 WHERE id = %s", [stock.id])

    out, error = run()

    assert error is not None and error.returncode == 1
    assert out.splitlines() == [
        f"drift: waitlist entry {entry.id} sku=HOT-1: "
        "offered, but no pending reservation holds the offer",
        "check_inventory: 1 stock rows and 1 open waitlist entries checked, 1 with drift",
    ]
    assert status(entry) == "offered"  # nothing changes without --repair

    before = metric("waitlist_offers_total", outcome="expired")
    with django_capture_on_commit_callbacks(execute=True):
        out, error = run("--repair")

    assert error is None, out
    assert f"repaired: waitlist entry {entry.id} sku=HOT-1: offer ended (expired)" in out
    assert out.splitlines()[-1] == (
        "check_inventory: 1 stock rows and 1 open waitlist entries checked, 1 with drift, "
        "1 repaired, 0 left"
    )
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.EXPIRED and entry.ended_at is not None
    assert metric("waitlist_offers_total", outcome="expired") == before + 1
    [logged] = [r for r in check_log if getattr(r, "event", "") == "waitlist.offer_repaired"]
    assert (logged.entry_id, logged.status) == (entry.id, "expired")
    assert run()[1] is None


def test_an_offer_whose_hold_is_pending_but_lapsed_is_not_drift(sold_out):
    _, hold, entry = sold_out
    services.release(reservation_ids=[hold.id])
    sql(
        "UPDATE inventory_reservation SET expires_at = now() - interval '1 minute' WHERE id = %s",
        [offer_of(entry).id],
    )

    out, error = run()

    assert error is None, out
    assert out.splitlines()[-1].endswith("(1 lapsed pending reservations await the sweeper)")


def test_a_pending_hold_of_an_entry_that_ended_is_reported_and_left_to_a_person(sold_out):
    _, hold, entry = sold_out
    services.release(reservation_ids=[hold.id])
    offer = offer_of(entry)
    sql("UPDATE inventory_waitlistentry SET status = 'cancelled' WHERE id = %s", [entry.id])

    out, error = run("--repair")

    assert error is not None and error.returncode == 1
    lines = out.splitlines()
    assert (
        f"drift: reservation {offer.id} sku=HOT-1: holds the offer of waitlist entry "
        f"{entry.id}, but the entry is cancelled"
    ) in lines
    assert (
        f"not repaired: reservation {offer.id} sku=HOT-1: release the reservation or let it lapse"
    ) in lines
    assert lines[-1].endswith("1 with drift, 0 repaired, 1 left")
    offer.refresh_from_db()
    assert offer.status == ReservationStatus.PENDING


def test_a_lapsed_hold_left_of_an_ended_offer_awaits_the_sweeper():
    """An offer split over two warehouses whose first part the sweeper expired (it ends
    the offer) while the second, lapsed too, waits for the next batch: not drift."""
    east = WarehouseFactory(code="east")
    stock = stocked(on_hand=1, sku="SPLIT-1")
    other = StockLevelFactory(product=stock.product, warehouse=east, on_hand=1)
    holds = [reserve(stock, 1), reserve(other, 1)]
    entry = join(CartFactory(), stock.product, 2)
    services.release(reservation_ids=[h.id for h in holds])
    parts = list(Reservation.objects.filter(waitlist_entry=entry).order_by("id"))
    assert len(parts) == 2 and status(entry) == "offered"
    Reservation.objects.filter(id__in=[p.id for p in parts]).update(
        expires_at=parts[0].expires_at.replace(year=2000)
    )
    assert services.expire_due(batch_size=1) == 1  # one part: the offer ends

    assert status(entry) == "expired"
    out, error = run()
    assert error is None, out

    # Once no longer lapsed (the expiry moved by hand), the same hold is drift.
    Reservation.objects.filter(id=parts[1].id).update(expires_at=entry.offer_expires_at)
    out, error = run()
    assert error is not None
    assert f"reservation {parts[1].id} sku=SPLIT-1: holds the offer" in out


def test_a_hold_of_an_offer_for_another_cart_or_product_is_reported(sold_out):
    _, hold, entry = sold_out
    services.release(reservation_ids=[hold.id])
    offer = offer_of(entry)
    stranger = CartFactory()
    sql("UPDATE inventory_reservation SET cart_id = %s WHERE id = %s", [stranger.id, offer.id])

    out, error = run()

    assert error is not None
    assert (
        f"drift: reservation {offer.id} sku=HOT-1: holds the offer of waitlist entry "
        f"{entry.id}, but it is held for another cart"
    ) in out.splitlines()

    other = stocked(on_hand=1, sku="OTHER-1")
    other_offer = reserve(other, 1, cart=entry.cart)
    sql(
        "UPDATE inventory_reservation SET waitlist_entry_id = %s WHERE id = %s",
        [entry.id, other_offer.id],
    )
    out, _ = run()
    assert (
        f"drift: reservation {other_offer.id} sku=HOT-1: holds the offer of waitlist entry "
        f"{entry.id}, but it is of another product"
    ) in out.splitlines()


def test_a_missed_offer_is_reported_and_repair_makes_it(sold_out):
    stock, hold, entry = sold_out
    behind = join(CartFactory(), stock.product, 1)
    # The hold ends behind the engine's back: nothing offered the freed units.
    sql("UPDATE inventory_reservation SET status = 'released' WHERE id = %s", [hold.id])
    sql("UPDATE inventory_stocklevel SET reserved = 0 WHERE id = %s", [stock.id])

    out, error = run()

    assert error is not None and error.returncode == 1
    # Only the head of the queue is a missed offer: the entry behind waits its turn.
    assert out.splitlines() == [
        f"drift: waitlist entry {entry.id} sku=HOT-1: "
        "first in the queue for 2 unit(s) while 2 are free (a missed offer)",
        "check_inventory: 1 stock rows and 2 open waitlist entries checked, 1 with drift",
    ]

    out, error = run("--repair")

    assert error is None, out
    assert (
        f"repaired: waitlist entry {entry.id} sku=HOT-1: waitlist served, 1 offer(s) made"
    ) in out
    assert (status(entry), status(behind)) == ("offered", "waiting")
    offer = offer_of(entry)
    assert (offer.cart_id, offer.quantity) == (entry.cart_id, 2)
    assert CartItem.objects.filter(cart_id=entry.cart_id, product=stock.product).exists()
    stock.refresh_from_db()
    assert (stock.reserved, stock.waitlisted) == (2, 1)
    assert run()[1] is None


def test_a_warehouse_turned_active_leaves_a_missed_offer_that_repair_serves():
    east = WarehouseFactory(code="east")
    stock = stocked(on_hand=1, sku="HOT-5")
    StockLevelFactory(product=stock.product, warehouse=east, on_hand=3)
    catalog.warehouse_update(code="east", is_active=False)
    reserve(stock, 1)
    entry = join(CartFactory(), stock.product, 2)
    assert run()[1] is None  # the 3 units in east are not for sale

    catalog.warehouse_update(code="east", is_active=True)

    out, error = run()
    assert error is not None
    assert (
        f"drift: waitlist entry {entry.id} sku=HOT-5: "
        "first in the queue for 2 unit(s) while 3 are free (a missed offer)"
    ) in out
    assert run("--repair")[1] is None
    assert status(entry) == "offered"
    assert run()[1] is None


def test_units_free_elsewhere_than_a_pinned_entrys_warehouse_are_no_missed_offer():
    east = WarehouseFactory(code="east")
    stock = stocked(on_hand=3, sku="HOT-6")
    pinned_row = StockLevelFactory(product=stock.product, warehouse=east, on_hand=1)
    reserve(pinned_row, 1)
    entry = join(CartFactory(), stock.product, 1, warehouse=east)
    assert status(entry) == "waiting"

    out, error = run()
    assert error is None, out

    # Free in east (behind the engine's back): now it is one.
    sql("UPDATE inventory_stocklevel SET on_hand = 2 WHERE id = %s", [pinned_row.id])
    out, error = run()
    assert error is not None
    assert "while 1 are free in warehouse east (a missed offer)" in out


def test_help_documents_the_waitlist_checks():
    text = Command().create_parser("manage.py", "check_inventory").format_help()
    assert "waitlisted" in text
    assert "a missed offer" in text
