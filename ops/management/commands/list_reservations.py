import json

from django.utils import timezone

from checkout.orphans import orphaned_reservations
from core.jobcommands import OpsCommand, positive_int
from inventory.cleanup import lapsed_reservations


class Command(OpsCommand):
    help = (
        "List pending reservations that a cleanup job would end: --expired (past their "
        "expiry, still holding stock) or --orphaned (cart not in checkout, no order). "
        "Read-only."
    )

    def add_arguments(self, parser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--expired", action="store_true", help="Pending reservations past their expiry."
        )
        which.add_argument(
            "--orphaned",
            action="store_true",
            help="Pending reservations of carts not in checkout, with no order.",
        )
        parser.add_argument(
            "--limit",
            type=positive_int,
            default=100,
            metavar="N",
            help="Show at most N, oldest expiry first (default 100).",
        )
        parser.add_argument(
            "--format", choices=["text", "json"], default="text", help="Output format."
        )

    def handle(self, *args, **options) -> None:
        kind = "expired" if options["expired"] else "orphaned"
        queryset = lapsed_reservations() if options["expired"] else orphaned_reservations()
        total = queryset.count()
        rows = list(
            queryset.select_related("product", "warehouse", "cart").order_by("expires_at", "id")[
                : options["limit"]
            ]
        )
        now = timezone.now()
        items = [
            {
                "id": r.id,
                "sku": r.product.sku,
                "warehouse": r.warehouse.code,
                "quantity": r.quantity,
                "expires_at": r.expires_at.isoformat(),
                "overdue_seconds": max(0, int((now - r.expires_at).total_seconds())),
                "cart_id": str(r.cart_id) if r.cart_id else None,
                "cart_status": r.cart.status if r.cart_id else None,
            }
            for r in rows
        ]
        if options["format"] == "json":
            self.stdout.write(json.dumps({"kind": kind, "total": total, "items": items}))
            return
        if items:
            header = f"{'id':>10}  {'sku':<20} {'warehouse':<12} {'qty':>5}  {'expires_at':<25} {'overdue':>8}  {'cart':<36} cart_status"
            self.stdout.write(header)
            for item in items:
                self.stdout.write(
                    f"{item['id']:>10}  {item['sku']:<20} {item['warehouse']:<12} "
                    f"{item['quantity']:>5}  {item['expires_at']:<25} "
                    f"{item['overdue_seconds']:>7}s  {item['cart_id'] or '-':<36} "
                    f"{item['cart_status'] or '-'}"
                )
        self.stdout.write(f"list_reservations: {total} {kind} reservations (showing {len(items)})")
