from checkout.cleanup import ABANDON_STALE_CHECKOUTS
from core.jobcommands import JobCommand


class Command(JobCommand):
    help = (
        "Abandon carts that entered checkout more than CHECKOUT_ABANDON_AFTER_SECONDS ago "
        "(reason 'stale'), releasing their pending reservations."
    )
    job = ABANDON_STALE_CHECKOUTS
