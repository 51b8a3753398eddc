from checkout.orphans import RELEASE_ORPHANED_RESERVATIONS
from core.jobcommands import JobCommand


class Command(JobCommand):
    help = (
        "Release pending reservations of carts that are not in checkout and have no order "
        "(reason 'orphaned'; the release-orphaned-reservations beat job). Reservations "
        "without a cart (internal API) and carts with a captured payment awaiting "
        "reconciliation are left alone."
    )
    job = RELEASE_ORPHANED_RESERVATIONS
