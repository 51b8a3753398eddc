"""The serve-waitlists job (SPEC §15): the periodic pass offers what an offering
transaction had to leave (a stock row another transaction held), units of a warehouse
turned active, passes lapsed offers on and gives up the turn of closed carts; strictly in
entry order, never twice, safe with two runs at once; it takes up only waitlists that can
move."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from carts.models import Cart, CartItem, CartStatus
from inventory import services, waitlist, waitlist_jobs
from inventory.models import (
    Product,
    Reservation,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
    Warehouse,
)
from inventory.tasks import serve_waitlists as serve_task
from tests.support import (
    assert_stock_invariants,
    lapse,
    metric,
    queued_tasks,
    row_locked,
    run_concurrently,
    stocked,
)
from tests.support.factories import CartFactory, StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


def sold_out(*, in_reserve: int, sku: str | None = None) -> tuple[Product, StockLevel]:
    """A product with nothing in the default warehouse and ``in_reserve`` units in the
    inactive warehouse ``reserve`` (no shopper can have them); returns it and that row."""
    fields = {"sku": sku} if sku else {}
    product = stocked(on_hand=0, **fields).product
    reserve = WarehouseFactory(code="reserve", is_active=False, priority=5)
    return product, StockLevelFactory(product=product, warehouse=reserve, on_hand=in_reserve)


def queue(product: Product, *quantities: int) -> list[WaitlistEntry]:
    """One new active cart per quantity, each joining the product's waitlist in turn."""
    return [
        waitlist.join(
            cart_id=CartFactory().id, product=product, warehouse=None, quantity=q, actor="test"
        ).entry
        for q in quantities
    ]


def open_reserve() -> None:
    """Staff turn the warehouse active: no stock number changes, nothing is offered."""
    Warehouse.objects.filter(code="reserve").update(is_active=True)


def statuses(entries: list[WaitlistEntry]) -> list[str]:
    by_id = dict(WaitlistEntry.objects.values_list("id", "status"))
    return [by_id[e.id] for e in entries]


def offer_holds(entry: WaitlistEntry) -> list[tuple[str, int, str]]:
    return list(
        Reservation.objects.filter(waitlist_entry_id=entry.id)
        .order_by("id")
        .values_list("warehouse__code", "quantity", "status")
    )


def waitlisted(product: Product) -> set[int]:
    return set(StockLevel.objects.filter(product=product).values_list("waitlisted", flat=True))


def test_units_of_a_warehouse_turned_active_go_to_the_queue_in_order(
    django_capture_on_commit_callbacks,
):
    product, _ = sold_out(in_reserve=3)
    first, second, third = queue(product, 2, 2, 1)
    open_reserve()
    assert statuses([first, second, third]) == ["waiting"] * 3  # nothing offered it yet
    before = metric("waitlist_offers_total", outcome="offered")

    with django_capture_on_commit_callbacks(execute=True):
        run = waitlist_jobs.serve_waitlists(batch_size=10, actor="test-pass")

    assert (run.done, run.skipped, run.errors, run.batches, run.more) == (1, 0, 0, 1, False)
    # Strictly first come first served: 1 unit is left, the second entry wants 2, so
    # the third (wanting 1) does not pass it.
    assert statuses([first, second, third]) == ["offered", "waiting", "waiting"]
    assert offer_holds(first) == [("reserve", 2, ReservationStatus.PENDING)]
    assert Reservation.objects.get(waitlist_entry_id=first.id).cart_id == first.cart_id
    assert CartItem.objects.filter(cart_id=first.cart_id, product=product, quantity=2).exists()
    assert waitlisted(product) == {3}
    assert metric("waitlist_offers_total", outcome="offered") - before == 1
    assert_stock_invariants()

    # The second entry wants 2 and 1 is free: not due, nothing is taken up.
    assert waitlist_jobs.due_waitlists() == []
    assert waitlist_jobs.serve_waitlists(batch_size=10).batches == 0


def test_a_lapsed_offer_passes_to_the_next_entry(django_capture_on_commit_callbacks):
    product, _ = sold_out(in_reserve=0)
    first, second = queue(product, 1, 1)
    default = StockLevel.objects.get(product=product, warehouse__is_default=True)
    # A stock increase offers in its own transaction: the first entry gets the unit.
    services.set_stock(product=product, warehouse=default.warehouse, on_hand=1, actor="test")
    assert statuses([first, second]) == ["offered", "waiting"]
    [hold] = Reservation.objects.filter(waitlist_entry_id=first.id)
    lapse(reservation_ids=[hold.id])
    expired_before = metric("waitlist_offers_total", outcome="expired")

    with django_capture_on_commit_callbacks(execute=True):
        run = waitlist_jobs.serve_waitlists(batch_size=10, actor="test-pass")

    assert run.done == 1
    assert statuses([first, second]) == ["expired", "offered"]
    hold.refresh_from_db()
    assert hold.status == ReservationStatus.EXPIRED
    assert offer_holds(second) == [("default", 1, ReservationStatus.PENDING)]
    assert metric("waitlist_offers_total", outcome="expired") - expired_before == 1
    assert waitlisted(product) == {0}
    assert_stock_invariants()


def test_an_entry_whose_cart_closed_gives_its_turn_up():
    product, _ = sold_out(in_reserve=1)
    first, second = queue(product, 1, 1)
    Cart.objects.filter(id=first.cart_id).update(status=CartStatus.COMPLETED)
    open_reserve()

    assert waitlist_jobs.serve_waitlists(batch_size=10).done == 1

    assert statuses([first, second]) == ["cancelled", "offered"]
    assert not Reservation.objects.filter(cart_id=first.cart_id).exists()
    assert waitlisted(product) == {0}
    assert_stock_invariants()


def test_products_are_served_in_bounded_batches_oldest_queue_first():
    products = [sold_out(in_reserve=1, sku=f"PASS-{i}")[0] for i in range(3)]
    entries = [queue(p, 1)[0] for p in reversed(products)]  # the last product queued first
    open_reserve()

    run = waitlist_jobs.serve_waitlists(batch_size=2, max_batches=1)

    assert (run.done, run.batches, run.more) == (2, 1, True)
    assert statuses(entries) == ["offered", "offered", "waiting"]
    run = waitlist_jobs.serve_waitlists(batch_size=2, max_batches=1)
    assert (run.done, run.batches, run.more) == (1, 1, False)
    assert statuses(entries) == ["offered"] * 3


def test_waitlists_that_cannot_move_are_not_taken_up(django_assert_num_queries):
    """Nothing free, or too little for the first entry whose cart is open: not due."""
    nothing, _ = sold_out(in_reserve=0, sku="NOTHING")
    queue(nothing, 1)
    too_little, _ = sold_out(in_reserve=1, sku="TOO-LITTLE")
    queue(too_little, 2, 1)
    pinned = stocked(on_hand=0, sku="PINNED").product
    StockLevelFactory(product=pinned, warehouse=WarehouseFactory(code="east"), on_hand=3)
    waitlist.join(
        cart_id=CartFactory().id,
        product=pinned,
        warehouse=Warehouse.objects.get(is_default=True),
        quantity=1,
        actor="test",
    )
    open_reserve()

    with django_assert_num_queries(2):  # the due waitlists, the open carts among heads
        assert waitlist_jobs.due_waitlists() == []
    run = waitlist_jobs.serve_waitlists(batch_size=1)

    assert (run.done, run.batches, run.more, run.errors) == (0, 0, False, 0)
    assert WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING).count() == 4
    out = StringIO()
    call_command("serve_waitlists", "--dry-run", stdout=out)
    assert out.getvalue().startswith("serve_waitlists: would serve 0 waitlists")


def test_a_closed_cart_at_the_head_of_a_queue_too_short_for_it_is_due():
    product, _ = sold_out(in_reserve=1)
    first, second = queue(product, 2, 1)
    open_reserve()
    assert waitlist_jobs.due_waitlists() == []
    Cart.objects.filter(id=first.cart_id).update(status=CartStatus.CHECKOUT)

    assert waitlist_jobs.due_waitlists() == [product.id]
    assert waitlist_jobs.serve_waitlists(batch_size=10).done == 1

    assert statuses([first, second]) == ["cancelled", "offered"]
    assert waitlisted(product) == {0}
    assert_stock_invariants()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_warehouse")
def test_two_runs_at_once_offer_each_unit_once_and_in_order():
    products = [sold_out(in_reserve=3, sku=f"RACE-{i}")[0] for i in range(3)]
    queues = {p.id: queue(p, 1, 1, 1, 1, 1) for p in products}
    open_reserve()

    runs = run_concurrently(2, lambda i: waitlist_jobs.serve_waitlists(batch_size=2))

    assert not [r for r in runs if isinstance(r, Exception)], runs
    # Each waitlist served once: the run that waited for another's locks found it no
    # longer due (skipped), or did not find it due at all.
    assert sum(r.done for r in runs) == 3
    assert sum(r.errors for r in runs) == 0
    for product in products:
        entries = queues[product.id]
        assert statuses(entries) == ["offered"] * 3 + ["waiting"] * 2
        for entry in entries[:3]:
            assert offer_holds(entry) == [("reserve", 1, ReservationStatus.PENDING)]
        assert waitlisted(product) == {2}
    reserved = StockLevel.objects.filter(warehouse__code="reserve").values_list("reserved")
    assert {r for (r,) in reserved} == {3}
    assert_stock_invariants()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_warehouse")
def test_units_left_by_a_transaction_that_met_a_busy_row_are_offered_by_the_pass():
    """A stock increase offers in its own transaction only if it can take every stock row
    of the product at once; with one held elsewhere it leaves the offer to the pass."""
    product, reserve_row = sold_out(in_reserve=0)
    open_reserve()
    [entry] = queue(product, 1)
    default = StockLevel.objects.select_related("warehouse").get(
        product=product, warehouse__is_default=True
    )
    with row_locked(StockLevel, reserve_row.id):
        services.set_stock(product=product, warehouse=default.warehouse, on_hand=1, actor="test")
        assert statuses([entry]) == ["waiting"]  # the increase could not offer

    assert waitlist_jobs.serve_waitlists(batch_size=10).done == 1

    assert statuses([entry]) == ["offered"]
    assert offer_holds(entry) == [("default", 1, ReservationStatus.PENDING)]
    assert_stock_invariants()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_warehouse")
def test_a_product_whose_rows_stay_locked_is_an_error_and_the_others_are_served():
    stuck, stuck_row = sold_out(in_reserve=1, sku="STUCK")
    fine, _ = sold_out(in_reserve=1, sku="FINE")
    [stuck_entry] = queue(stuck, 1)
    [fine_entry] = queue(fine, 1)
    open_reserve()
    out = StringIO()
    try:
        with row_locked(StockLevel, stuck_row.id):
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '300ms'")
            with pytest.raises(CommandError) as failed:
                call_command("serve_waitlists", stdout=out, stderr=StringIO())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert failed.value.returncode == 1
    line = out.getvalue().strip()
    assert line.startswith(
        "serve_waitlists: served 1 waitlists in 1 batch, 0 skipped (busy), 1 error"
    )
    assert line.endswith(f"; failed: {stuck.id}")
    assert statuses([stuck_entry, fine_entry]) == ["waiting", "offered"]

    assert waitlist_jobs.serve_waitlists(batch_size=10).done == 1  # the next run
    assert statuses([stuck_entry]) == ["offered"]
    assert_stock_invariants()


def test_command_dry_run_counts_waiting_entries_and_changes_nothing():
    product, _ = sold_out(in_reserve=2)
    entries = queue(product, 1, 1, 1)
    open_reserve()
    out = StringIO()

    call_command("serve_waitlists", "--dry-run", stdout=out)

    assert out.getvalue() == "serve_waitlists: would serve 1 waitlists (dry run, nothing changed)\n"
    assert statuses(entries) == ["waiting"] * 3
    out = StringIO()
    call_command("serve_waitlists", stdout=out)
    assert out.getvalue().startswith("serve_waitlists: served 1 waitlists in 1 batch, 0 skipped")
    assert statuses(entries) == ["offered", "offered", "waiting"]


def test_the_task_serves_and_is_logged_with_its_actor(broker, caplog):
    product, _ = sold_out(in_reserve=1)
    [entry] = queue(product, 1)
    open_reserve()

    with caplog.at_level("INFO"):
        result = serve_task.apply().get()

    assert (result["job"], result["done"], result["errors"], result["more"]) == (
        "serve_waitlists",
        1,
        0,
        False,
    )
    assert queued_tasks(broker) == []
    served = [r for r in caplog.records if getattr(r, "event", "") == "waitlist.served"]
    assert [(r.product_id, r.offers, r.actor) for r in served] == [
        (str(product.id), 1, "task:serve_waitlists")
    ]
    finished = [r for r in caplog.records if getattr(r, "event", "") == "job.finished"]
    assert [(r.job, r.done) for r in finished] == [("serve_waitlists", 1)]
    hold = Reservation.objects.get(waitlist_entry_id=entry.id)
    assert hold.events.get().actor == "task:serve_waitlists"
    assert serve_task.apply().get()["done"] == 0  # run again: nothing twice


@override_settings(CLEANUP_BATCH_SIZE=2, CLEANUP_MAX_BATCHES_PER_RUN=1)
def test_the_task_enqueues_itself_again_while_waitlists_are_due(broker):
    products = [sold_out(in_reserve=1, sku=f"MORE-{i}")[0] for i in range(3)]
    entries = [queue(p, 1)[0] for p in products]
    open_reserve()

    result = serve_task.apply().get()

    assert (result["done"], result["more"]) == (2, True)
    assert queued_tasks(broker) == ["inventory.serve_waitlists"]
    broker.delete("celery")
    # What the re-enqueued task does: the served waitlist is no longer due.
    result = serve_task.apply().get()
    assert (result["done"], result["more"]) == (1, False)
    assert queued_tasks(broker) == []
    assert statuses(entries) == ["offered"] * 3
