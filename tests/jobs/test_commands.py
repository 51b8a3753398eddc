"""The ops commands: summary lines, --dry-run changing nothing, the progress bar only on
a terminal, and the exit codes their --help documents."""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from carts.models import Cart, CartStatus
from inventory import services
from inventory.models import (
    ReleaseReason,
    Reservation,
    ReservationEvent,
    ReservationStatus,
    StockLevel,
)
from orders.models import Order
from payments.models import Payment
from tests.support import (
    assert_stock_invariants,
    cart_with_reservations,
    checkout_cart,
    lapse,
    lapsed_reservations,
    make_stale,
    paid_cart_without_order,
    row_locked,
    stocks,
)
from tests.support.factories import OrderFactory

ROOT = Path(__file__).resolve().parents[2]

JOB_COMMANDS = {
    "expire_reservations": "would expire 3 reservations",  # the expired cart's one too
    "abandon_expired_checkouts": "would abandon 1 carts",
    "abandon_stale_checkouts": "would abandon 1 carts",
    "release_orphaned_reservations": "would release 1 reservations",
    "reconcile_payments": "would handle 1 payments",
}


def run(name: str, *args: str, stderr=None) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=stderr or StringIO())
    return out.getvalue()


@pytest.fixture
def mess(db):
    """One of everything a cleanup job acts on."""
    lapsed_reservations(stocks(2))
    expired = checkout_cart(stocks(1))
    lapse(carts=[expired])
    stale = checkout_cart(stocks(1))
    make_stale(stale)
    cart_with_reservations(stocks(1), status=CartStatus.ACTIVE)
    paid_cart_without_order()


def snapshot() -> dict[str, object]:
    return {
        "reservations": sorted(
            Reservation.objects.values_list("id", "status", "release_reason", "expires_at")
        ),
        "stock": sorted(StockLevel.objects.values_list("id", "on_hand", "reserved")),
        "carts": sorted(Cart.objects.values_list("id", "status", "expires_at")),
        "payments": sorted(Payment.objects.values_list("id", "status", "needs_attention")),
        "events": ReservationEvent.objects.count(),
        "orders": Order.objects.count(),
    }


@pytest.mark.parametrize(("command", "expected"), JOB_COMMANDS.items())
def test_dry_run_counts_and_changes_nothing(mess, command, expected):
    before = snapshot()

    out = run(command, "--dry-run")

    assert out == f"{command}: {expected} (dry run, nothing changed)\n"
    assert snapshot() == before


def test_cleanup_dry_run_reports_every_job_and_changes_nothing(mess):
    before = snapshot()

    lines = run("cleanup", "--dry-run").splitlines()

    assert [line.split(":")[0] for line in lines] == [
        "reconcile_payments",
        "abandon_expired_checkouts",
        "abandon_stale_checkouts",
        "release_orphaned_reservations",
        "expire_reservations",
        "serve_waitlists",
        "cleanup",
    ]
    assert lines[-1].startswith("cleanup: 6 jobs, 0 with errors (dry run, nothing changed)")
    assert snapshot() == before


def test_cleanup_runs_every_job_and_leaves_nothing_to_do(mess):
    lines = run("cleanup", "--batch-size", "1").splitlines()

    assert lines[0].startswith(
        "reconcile_payments: handled (order written or flagged for staff) 1 payments in 1 batch,"
    )
    assert lines[1].startswith("abandon_expired_checkouts: abandoned 1 carts in 1 batch, 0 skipped")
    assert lines[2].startswith("abandon_stale_checkouts: abandoned 1 carts")
    assert lines[3].startswith("release_orphaned_reservations: released 1 reservations")
    assert lines[4].startswith("expire_reservations: expired 2 reservations in 2 batches")
    assert lines[5].startswith("serve_waitlists: served 0 waitlists in 0 batches")
    assert lines[6].startswith("cleanup: 6 jobs, 0 with errors (")
    assert [line.split(": would")[1] for line in run("cleanup", "--dry-run").splitlines()[:5]] == [
        " handle 0 payments (dry run, nothing changed)",
        " abandon 0 carts (dry run, nothing changed)",
        " abandon 0 carts (dry run, nothing changed)",
        " release 0 reservations (dry run, nothing changed)",
        " expire 0 reservations (dry run, nothing changed)",
    ]
    assert Reservation.objects.filter(status=ReservationStatus.PENDING).count() == 0
    assert_stock_invariants()


def test_max_batches_stops_early_and_says_more_remain(db):
    lapsed_reservations(stocks(3))

    out = run("expire_reservations", "--batch-size", "1", "--max-batches", "2")

    assert out.startswith("expire_reservations: expired 2 reservations in 2 batches, 0 skipped")
    assert out.rstrip().endswith("; more remain (stopped at --max-batches)")


def read_all(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_is_shown_on_a_terminal_only(db):
    lapsed_reservations(stocks(3))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    terminal = os.fdopen(slave, "w")
    try:
        quiet = StringIO()
        run("expire_reservations", "--dry-run", stderr=quiet)
        run("expire_reservations", "--batch-size", "2", stderr=quiet)
        assert quiet.getvalue() == ""  # not a terminal: no bar

        lapsed_reservations(stocks(3))
        run("expire_reservations", "--batch-size", "2", stderr=terminal)
        terminal.flush()
        bar = read_all(master)
        assert "expire_reservations" in bar
        assert "3/3" in bar and "100%" in bar

        lapsed_reservations(stocks(1))
        run("expire_reservations", "--no-progress", stderr=terminal)
        terminal.flush()
        assert read_all(master) == ""
    finally:
        terminal.close()
        os.close(master)


def test_release_reservation_releases_one_and_explains_the_rest(db):
    rows = stocks(1, on_hand=5)
    [pending] = services.reserve(
        lines=[services.ReservationLine(rows[0].product_id, rows[0].warehouse_id, 2)],
        ttl_seconds=300,
    )
    sku = rows[0].product.sku

    assert run("release_reservation", str(pending.id), "--dry-run") == (
        f"release_reservation: would release reservation {pending.id} (2 x {sku} @ default) "
        "(dry run, nothing changed)\n"
    )
    assert StockLevel.objects.get(id=rows[0].id).reserved == 2

    assert run("release_reservation", str(pending.id)) == (
        f"release_reservation: released reservation {pending.id} (2 x {sku} @ default), "
        "reason ops; stock returned\n"
    )
    pending.refresh_from_db()
    assert (pending.status, pending.release_reason) == ("released", ReleaseReason.OPS)
    assert StockLevel.objects.get(id=rows[0].id).reserved == 0
    assert ReservationEvent.objects.get(reservation=pending, kind="released").actor == (
        "command:release_reservation"
    )

    assert run("release_reservation", str(pending.id)).endswith(
        "is already released; nothing to do\n"
    )


def test_release_reservation_exit_codes_for_unknown_and_confirmed(db):
    rows = stocks(1)
    [r] = services.reserve(
        lines=[services.ReservationLine(rows[0].product_id, rows[0].warehouse_id, 1)],
        ttl_seconds=300,
    )
    services.confirm(reservation_ids=[r.id], order_id=OrderFactory().id)

    with pytest.raises(CommandError) as missing:
        run("release_reservation", "987654")
    assert missing.value.returncode == 3
    assert str(missing.value) == "reservation 987654 does not exist"

    with pytest.raises(CommandError) as refused:
        run("release_reservation", str(r.id))
    assert refused.value.returncode == 4
    assert "cancel the order to restock it" in str(refused.value)


def test_release_order_reservations_releases_pending_and_leaves_confirmed(db):
    rows = stocks(2, on_hand=5)
    cart = cart_with_reservations(rows, status=CartStatus.COMPLETED)
    order = OrderFactory(cart=cart)
    confirmed, leftover = Reservation.objects.filter(cart=cart).order_by("id")
    services.confirm(reservation_ids=[confirmed.id], order_id=order.id)

    dry = run("release_order_reservations", order.number, "--dry-run")
    assert dry == (
        f"release_order_reservations: order {order.number}: would release 1, 1 confirmed "
        f"(not touched), 0 already ended; would release: {leftover.id}; confirmed: "
        f"{confirmed.id} (dry run, nothing changed)\n"
    )
    assert Reservation.objects.get(id=leftover.id).status == ReservationStatus.PENDING

    out = run("release_order_reservations", order.number)
    assert out.startswith(
        f"release_order_reservations: order {order.number}: released 1, 1 confirmed"
    )
    assert Reservation.objects.get(id=leftover.id).status == ReservationStatus.RELEASED
    assert Reservation.objects.get(id=confirmed.id).status == ReservationStatus.CONFIRMED
    assert_stock_invariants()

    with pytest.raises(CommandError) as missing:
        run("release_order_reservations", "NO-SUCH-ORDER")
    assert missing.value.returncode == 3


def test_list_reservations_shows_lapsed_and_orphaned(db):
    lapsed = lapsed_reservations(stocks(2))
    cart = cart_with_reservations(stocks(1), status=CartStatus.ABANDONED)
    [orphan] = Reservation.objects.filter(cart=cart)

    text = run("list_reservations", "--expired", "--limit", "1").splitlines()
    assert text[0].split() == [
        "id", "sku", "warehouse", "qty", "expires_at", "overdue", "cart", "cart_status"
    ]  # fmt: skip
    assert text[1].split()[0] == str(lapsed[0])
    assert text[-1] == "list_reservations: 2 expired reservations (showing 1)"

    listed = json.loads(run("list_reservations", "--orphaned", "--format", "json"))
    assert listed["kind"] == "orphaned" and listed["total"] == 1
    assert listed["items"][0]["id"] == orphan.id
    assert listed["items"][0]["cart_status"] == "abandoned"
    assert listed["items"][0]["overdue_seconds"] == 0


def manage(*args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{settings.DATABASES['default']['USER'] or 'postgres'}@"
            f"{settings.DATABASES['default']['HOST'] or '127.0.0.1'}:"
            f"{settings.DATABASES['default']['PORT'] or 5432}/"
            f"{settings.DATABASES['default']['NAME']}"
        ),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(  # noqa: S603 -- our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db
def test_exit_codes_from_the_command_line():
    help_text = manage("release_reservation", "--help")
    assert help_text.returncode == 0
    assert "exit codes:\n  0  done" in help_text.stdout
    assert "  3  not found" in help_text.stdout

    usage = manage("expire_reservations", "--batch-size", "0")
    assert usage.returncode == 2
    assert "--batch-size: must be at least 1" in usage.stderr
    assert manage("list_reservations").returncode == 2  # --expired or --orphaned needed

    missing = manage("release_reservation", "987654")
    assert missing.returncode == 3
    assert "reservation 987654 does not exist" in missing.stderr

    ok = manage("expire_reservations")
    assert ok.returncode == 0
    assert ok.stdout.startswith("expire_reservations: expired 0 reservations in 0 batches")
    assert ok.stderr == ""  # no terminal: no progress bar


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_warehouse")
def test_cleanup_exits_1_when_a_job_cannot_finish_an_item():
    """A stock row held past the lock timeout makes one orphan release fail: it is
    logged and counted, the other jobs still run, the exit code is 1."""
    rows = stocks(2)
    stuck = cart_with_reservations(rows[:1], status=CartStatus.ACTIVE)
    fine = cart_with_reservations(rows[1:], status=CartStatus.ACTIVE)
    out = StringIO()
    try:
        with row_locked(StockLevel, rows[0].id):
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '300ms'")
            with pytest.raises(CommandError) as failed:
                call_command("cleanup", stdout=out, stderr=StringIO())
    finally:
        connection.close()

    assert failed.value.returncode == 1
    assert str(failed.value) == "errors in: release_orphaned_reservations"
    lines = out.getvalue().splitlines()
    assert lines[3].startswith("release_orphaned_reservations: released 1 reservations")
    assert "1 error (" in lines[3] and lines[3].endswith(f"; failed: {stuck.id}")
    assert lines[6].startswith("cleanup: 6 jobs, 1 with errors")
    assert not Reservation.objects.filter(cart=fine, status=ReservationStatus.PENDING).exists()
    assert Reservation.objects.filter(cart=stuck, status=ReservationStatus.PENDING).exists()


def test_release_reservation_rejects_a_non_number(db):
    with pytest.raises(CommandError) as usage:
        run("release_reservation", "abc")
    assert "expected a whole number" in str(usage.value)


def test_list_reservations_overdue_is_counted_from_expiry(db):
    [rid] = lapsed_reservations(stocks(1))
    Reservation.objects.filter(id=rid).update(expires_at=timezone.now() - timedelta(minutes=10))

    listed = json.loads(run("list_reservations", "--expired", "--format", "json"))

    assert 595 <= listed["items"][0]["overdue_seconds"] <= 605


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_warehouse")
def test_log_lines_do_not_mix_with_the_progress_bar_on_a_terminal():
    """A real ``manage.py`` process with a terminal as stderr: every JSON log line written
    while the bar is shown stands on a line of its own (the bar is cleared first and drawn
    again after it), so each one parses as JSON."""
    lapsed_reservations(stocks(4))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{settings.DATABASES['default']['USER'] or 'postgres'}@"
            f"{settings.DATABASES['default']['HOST'] or '127.0.0.1'}:"
            f"{settings.DATABASES['default']['PORT'] or 5432}/"
            f"{settings.DATABASES['default']['NAME']}"
        ),
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(_read_until_closed(master)))
    reader.start()
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", "expire_reservations", "--batch-size", "1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=60,
        )
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    assert done.returncode == 0, done
    assert done.stdout.startswith("expire_reservations: expired 4 reservations in 4 batches")
    screen = "".join(chunks)
    assert "4/4" in screen and "100%" in screen  # the bar was shown
    segments = [part for line in screen.split("\n") for part in line.split("\r")]
    logs = [part.strip() for part in segments if '"reservation.expired"' in part]
    assert len(logs) == 4, screen
    for line in logs:
        assert json.loads(line)["event"] == "reservation.expired", line


def _read_until_closed(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO once the last writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
