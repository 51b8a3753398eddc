from django.conf import settings
from django.core.management.base import CommandError

from core.jobcommands import EXIT_NOT_FOUND, OpsCommand, positive_int
from orders.models import Order
from orders.release import release_order_reservations


class Command(OpsCommand):
    help = (
        "Release every pending reservation of an order (those linked to the order or its "
        "items, and any still pending on the cart it came from), reason 'ops'. Confirmed "
        "reservations are listed, not touched: cancel the order to restock them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("order_number", help="The order's number, as shown to the shopper.")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be released; change nothing."
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=None,
            metavar="N",
            help="Reservations per transaction (default: the CLEANUP_BATCH_SIZE setting).",
        )

    def handle(self, *args, **options) -> None:
        number = options["order_number"]
        order = Order.objects.filter(number=number).first()
        if order is None:
            raise CommandError(f"order {number} does not exist", returncode=EXIT_NOT_FOUND)
        outcome = release_order_reservations(
            order=order,
            batch_size=options["batch_size"] or settings.CLEANUP_BATCH_SIZE,
            actor="command:release_order_reservations",
            dry_run=options["dry_run"],
        )
        verb = "would release" if options["dry_run"] else "released"
        line = (
            f"release_order_reservations: order {number}: {verb} {len(outcome.released)}, "
            f"{len(outcome.confirmed)} confirmed (not touched), "
            f"{len(outcome.ended)} already ended"
        )
        if outcome.released:
            line += f"; {verb}: {', '.join(map(str, outcome.released))}"
        if outcome.confirmed:
            line += f"; confirmed: {', '.join(map(str, outcome.confirmed))}"
        if options["dry_run"]:
            line += " (dry run, nothing changed)"
        self.stdout.write(line)
