from checkout.cleanup import RECONCILE_PAYMENTS
from core.jobcommands import JobCommand


class Command(JobCommand):
    help = (
        "Finish the order of every captured payment that has none, or flag the payment "
        "for staff (the reconcile-payments beat job)."
    )
    job = RECONCILE_PAYMENTS
