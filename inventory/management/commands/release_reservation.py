from django.core.management.base import CommandError

from core.jobcommands import EXIT_NOT_FOUND, EXIT_REFUSED, OpsCommand, positive_int
from inventory import services
from inventory.models import ReleaseReason, Reservation, ReservationStatus


class Command(OpsCommand):
    help = (
        "Release one pending reservation and return its stock (reason 'ops' unless "
        "--reason says otherwise). Releasing a released or expired reservation does "
        "nothing; a confirmed one is refused (cancel its order to restock)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("reservation_id", type=positive_int, help="The reservation's id.")
        parser.add_argument(
            "--reason",
            default=ReleaseReason.OPS.value,
            choices=[reason.value for reason in ReleaseReason],
            help="Release reason recorded on the reservation and its event (default: ops).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would happen; change nothing."
        )

    def handle(self, *args, **options) -> None:
        rid = options["reservation_id"]
        reservation = (
            Reservation.objects.select_related("product", "warehouse").filter(id=rid).first()
        )
        if reservation is None:
            raise CommandError(f"reservation {rid} does not exist", returncode=EXIT_NOT_FOUND)
        what = (
            f"reservation {rid} ({reservation.quantity} x {reservation.product.sku} "
            f"@ {reservation.warehouse.code})"
        )
        if reservation.status == ReservationStatus.CONFIRMED:
            raise CommandError(
                f"{what} is confirmed into order {reservation.order_id}; cancel the order "
                "to restock it",
                returncode=EXIT_REFUSED,
            )
        if reservation.status != ReservationStatus.PENDING:
            self.stdout.write(
                f"release_reservation: {what} is already {reservation.status}; nothing to do"
            )
            return
        if options["dry_run"]:
            self.stdout.write(
                f"release_reservation: would release {what} (dry run, nothing changed)"
            )
            return
        [after] = services.release(
            reservation_ids=[rid], reason=options["reason"], actor="command:release_reservation"
        )
        if after.status == ReservationStatus.RELEASED and after.release_reason == options["reason"]:
            self.stdout.write(
                f"release_reservation: released {what}, reason {options['reason']}; stock returned"
            )
        else:  # it ended between our read and the lock
            self.stdout.write(f"release_reservation: {what} is already {after.status}")
