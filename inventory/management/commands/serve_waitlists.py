from core.jobcommands import JobCommand
from inventory.waitlist_jobs import SERVE_WAITLISTS


class Command(JobCommand):
    help = (
        "Offer free units to the waitlists, strictly in entry order, product by product "
        "(the serve-waitlists beat job, run until every product with waiting entries was "
        "served once)."
    )
    job = SERVE_WAITLISTS
