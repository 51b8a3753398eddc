from checkout.cleanup import ABANDON_EXPIRED_CHECKOUTS
from core.jobcommands import JobCommand


class Command(JobCommand):
    help = (
        "Abandon carts in checkout whose reservations lapsed (expires_at passed): their "
        "pending reservations end and the cart becomes 'abandoned' (reason 'expired')."
    )
    job = ABANDON_EXPIRED_CHECKOUTS
