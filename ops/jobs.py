"""Every cleanup job of SPEC §9, in the order ``manage.py cleanup`` (and the admin's "run
cleanup now") runs them: paid carts first (their reservations are still needed), then
carts, then reservations that nothing else ended, and last the waitlist pass (SPEC §15),
which offers what the jobs before it freed and the offering transactions had to leave."""

from __future__ import annotations

from checkout.cleanup import (
    ABANDON_EXPIRED_CHECKOUTS,
    ABANDON_STALE_CHECKOUTS,
    RECONCILE_PAYMENTS,
)
from checkout.orphans import RELEASE_ORPHANED_RESERVATIONS
from core.jobs import Job
from inventory.cleanup import EXPIRE_RESERVATIONS
from inventory.waitlist_jobs import SERVE_WAITLISTS

ALL_JOBS: tuple[Job, ...] = (
    RECONCILE_PAYMENTS,
    ABANDON_EXPIRED_CHECKOUTS,
    ABANDON_STALE_CHECKOUTS,
    RELEASE_ORPHANED_RESERVATIONS,
    EXPIRE_RESERVATIONS,
    SERVE_WAITLISTS,
)
