"""``manage.py check_inventory``: finds drift between stock counters and reservations,
and ``--repair`` puts the counters right."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from inventory import services
from inventory.management.commands.check_inventory import Command
from inventory.models import Reservation, StockLevel
from tests.support import reserve
from tests.support.factories import OrderFactory, StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("check_inventory", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def drift(stock: StockLevel, reserved: int) -> None:
    """Sets the counter behind the service's back, as a bug or a manual edit would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE inventory_stocklevel SET reserved = %s WHERE id = %s", [reserved, stock.id]
        )


def test_clean_database_prints_one_summary_line_and_succeeds():
    for _ in range(3):
        stock = StockLevelFactory(on_hand=10)
        reserve(stock, 2)

    out, error = run()

    assert error is None
    assert out.splitlines() == ["check_inventory: 3 stock rows checked, no drift"]


def test_drift_is_reported_per_row_and_fails():
    good = StockLevelFactory(on_hand=10)
    reserve(good, 2)
    east = WarehouseFactory(code="east")
    bad = StockLevelFactory(product__sku="BAD-1", warehouse=east, on_hand=10)
    reserve(bad, 3)
    drift(bad, 7)

    out, error = run()

    assert error is not None and error.returncode == 1
    assert "--repair" in str(error)
    assert out.splitlines() == [
        f"drift: stock {bad.id} sku=BAD-1 warehouse=east: "
        "reserved=7 but pending reservations hold 3",
        "check_inventory: 2 stock rows checked, 1 with drift",
    ]
    bad.refresh_from_db()
    assert bad.reserved == 7  # without --repair nothing changes


def test_counter_without_any_reservation_is_drift():
    stock = StockLevelFactory(product__sku="GHOST-1", on_hand=5)
    drift(stock, 2)

    out, error = run()

    assert error is not None
    assert "reserved=2 but pending reservations hold 0" in out


def test_only_pending_reservations_count():
    stock = StockLevelFactory(on_hand=10)
    confirmed = reserve(stock, 2)
    services.confirm(reservation_ids=[confirmed.id], order_id=OrderFactory().id)
    released = reserve(stock, 3)
    services.release(reservation_ids=[released.id])
    reserve(stock, 1)

    out, error = run()

    assert error is None, out
    drift(stock, 4)  # as if the confirmed and released ones still counted
    _, error = run()
    assert error is not None


def test_repair_resets_counters_from_reservations_and_logs(check_log):
    over = StockLevelFactory(product__sku="OVER", on_hand=10)
    reserve(over, 3)
    drift(over, 8)
    under = StockLevelFactory(product__sku="UNDER", on_hand=10)
    reserve(under, 4)
    drift(under, 0)
    fine = StockLevelFactory(on_hand=10)
    reserve(fine, 1)

    out, error = run("--repair")

    assert error is None, out
    lines = out.splitlines()
    assert f"repaired: stock {over.id} sku=OVER warehouse=default: reserved 8 -> 3" in lines
    assert f"repaired: stock {under.id} sku=UNDER warehouse=default: reserved 0 -> 4" in lines
    assert lines[-1] == "check_inventory: 3 stock rows checked, 2 with drift, 2 repaired, 0 left"
    over.refresh_from_db()
    under.refresh_from_db()
    fine.refresh_from_db()
    assert (over.reserved, under.reserved, fine.reserved) == (3, 4, 1)
    repaired = [r for r in check_log if getattr(r, "event", "") == "stock.reserved_repaired"]
    assert sorted((r.sku, r.reserved_before, r.reserved) for r in repaired) == [
        ("OVER", 8, 3),
        ("UNDER", 0, 4),
    ]
    # And the database is clean afterwards.
    assert run()[1] is None


def test_repair_leaves_pending_beyond_on_hand_to_a_person():
    stock = StockLevelFactory(product__sku="TIGHT", on_hand=5)
    reserve(stock, 5)
    # on_hand lowered behind the service's back below what is reserved: the counter
    # cannot be made right without deciding which number is wrong.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE inventory_stocklevel SET on_hand = 3, reserved = 3 WHERE id = %s", [stock.id]
        )

    out, error = run("--repair")

    assert error is not None and error.returncode == 1
    assert "pending reservations hold 5, more than on_hand=3" in out
    assert f"not repaired: stock {stock.id} sku=TIGHT warehouse=default" in out
    assert out.splitlines()[-1].endswith("1 with drift, 0 repaired, 1 left")
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (3, 3)


def test_reservation_filed_under_another_products_row_is_drift():
    a = StockLevelFactory(product__sku="A", on_hand=10)
    b = StockLevelFactory(product__sku="B", on_hand=10)
    reservation = reserve(a, 2)
    Reservation.objects.filter(id=reservation.id).update(product=b.product)

    out, error = run("--repair")

    assert error is not None
    assert f"drift: stock {a.id} sku=A warehouse=default: " in out
    assert "1 pending reservation(s) name another product or warehouse" in out
    assert f"not repaired: stock {a.id} sku=A warehouse=default: misfiled reservations" in out


def test_lapsed_reservations_are_not_drift_but_are_mentioned():
    stock = StockLevelFactory(on_hand=10)
    reserve(stock, 2, ttl_seconds=60)

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        out, error = run()

    assert error is None
    assert out.splitlines() == [
        "check_inventory: 1 stock rows checked, no drift "
        "(1 lapsed pending reservations await the sweeper)"
    ]


def test_every_batch_is_checked_with_one_query_each(django_assert_num_queries):
    stocks = [StockLevelFactory(on_hand=5) for _ in range(7)]
    drift(stocks[0], 1)
    drift(stocks[6], 2)

    # 7 rows in batches of 3: 3 full or partial batches, then an empty one; then one
    # statement per waitlist check (open entries, offers without hold, misplaced offer
    # holds, missed offers).
    with django_assert_num_queries(4 + 4):
        out, error = run("--batch-size", "3")

    assert error is not None
    assert [line.split(":")[1].strip() for line in out.splitlines()[:-1]] == [
        f"stock {stocks[0].id} sku={stocks[0].product.sku} warehouse=default",
        f"stock {stocks[6].id} sku={stocks[6].product.sku} warehouse=default",
    ]
    assert out.splitlines()[-1] == "check_inventory: 7 stock rows checked, 2 with drift"


def test_help_documents_the_exit_status():
    text = Command().create_parser("manage.py", "check_inventory").format_help()
    assert "Exit status: 0 no drift" in text
    assert "1 drift found and not repaired" in text


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError):
        call_command("check_inventory", "--batch-size", "0")
