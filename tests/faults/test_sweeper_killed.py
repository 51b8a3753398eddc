"""A sweeper process is killed with SIGKILL in the middle of a batch (its first batch
committed, the second paused inside its transaction by a trigger that waits on an
advisory lock this test holds). The killed batch leaves no trace; the rerun — what a
broker's redelivery does — expires every reservation exactly once, and a further run
finds nothing. Stock numbers hold at every step."""

from __future__ import annotations

import signal
import subprocess
from datetime import timedelta

import pytest
from django.db.models import Count, Q
from django.utils import timezone

from inventory import services
from inventory.models import Reservation, ReservationEvent, StockLevel
from tests.faults.dbfaults import database_url, raw_connection, wait_for_backend, wait_until_gone
from tests.faults.servers import PYTHON, ROOT, app_env
from tests.support import assert_stock_invariants
from tests.support.factories import StockLevelFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BATCH = 5
LAPSED = 3 * BATCH
LOCK_KEY = 770_001

PAUSE_SECOND_BATCH = f"""
CREATE FUNCTION fault_pause_sweep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- More expired events than one batch: this statement belongs to the second batch.
  IF (SELECT count(*) FROM inventory_reservationevent WHERE kind = 'expired') > {BATCH} THEN
    PERFORM pg_advisory_lock({LOCK_KEY});
    PERFORM pg_advisory_unlock({LOCK_KEY});
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER fault_pause_sweep AFTER INSERT ON inventory_reservationevent
  FOR EACH STATEMENT EXECUTE FUNCTION fault_pause_sweep();
"""  # noqa: S608 - built from constants
REMOVE_PAUSE = """
DROP TRIGGER IF EXISTS fault_pause_sweep ON inventory_reservationevent;
DROP FUNCTION IF EXISTS fault_pause_sweep();
"""


def _sweeper(**kwargs) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - fixed argument list
        [PYTHON, "manage.py", "expire_reservations", "--batch-size", str(BATCH), "--no-progress"],
        cwd=ROOT,
        env=app_env(database_url()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _expired_events_per_reservation() -> dict[int, int]:
    return dict(
        Reservation.objects.annotate(
            n=Count("events", filter=Q(events__kind="expired"))
        ).values_list("id", "n")
    )


def test_killed_sweeper_batch_is_undone_and_the_rerun_expires_each_reservation_once():
    rows = [StockLevelFactory(on_hand=10) for _ in range(LAPSED)]
    for row in rows:
        services.reserve(
            lines=[services.ReservationLine(row.product_id, row.warehouse_id, 2)],
            ttl_seconds=60,
            actor="test",
        )
    Reservation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    with raw_connection() as ctl:
        try:
            ctl.execute(PAUSE_SECOND_BATCH)
            ctl.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
            sweeper = _sweeper()
            try:
                pid = wait_for_backend(
                    ctl, wait_event_type="Lock", wait_event="advisory", timeout=60
                )
            finally:
                sweeper.send_signal(signal.SIGKILL)
                sweeper.wait(timeout=10)
            assert sweeper.returncode == -signal.SIGKILL
            ctl.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
            wait_until_gone(ctl, pid)
        finally:
            ctl.execute(REMOVE_PAUSE)

    # Only the first batch happened.
    assert Reservation.objects.filter(status="expired").count() == BATCH
    assert Reservation.objects.filter(status="pending").count() == LAPSED - BATCH
    assert ReservationEvent.objects.filter(kind="expired").count() == BATCH
    assert sum(StockLevel.objects.values_list("reserved", flat=True)) == 2 * (LAPSED - BATCH)
    assert_stock_invariants()

    rerun = _sweeper()
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    assert f"expired {LAPSED - BATCH} reservations" in output

    again = _sweeper()
    output, _ = again.communicate(timeout=120)
    assert again.returncode == 0, output
    assert "expired 0 reservations" in output

    assert set(_expired_events_per_reservation().values()) == {1}
    assert set(Reservation.objects.values_list("status", flat=True)) == {"expired"}
    assert set(StockLevel.objects.values_list("on_hand", "reserved")) == {(10, 0)}
    assert_stock_invariants()
