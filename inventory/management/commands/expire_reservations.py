from core.jobcommands import JobCommand
from inventory.cleanup import EXPIRE_RESERVATIONS


class Command(JobCommand):
    help = (
        "Expire pending reservations past their expiry and return their stock "
        "(the expire-reservations beat job, run until nothing is left)."
    )
    job = EXPIRE_RESERVATIONS
