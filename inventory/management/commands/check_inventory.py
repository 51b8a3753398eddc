"""``manage.py check_inventory [--repair] [--batch-size N]``: checks the stock invariants
of SPEC §3 over the whole database and reports (and with ``--repair`` fixes) drift."""

from __future__ import annotations

import argparse
import logging

from django.core.management.base import BaseCommand, CommandError

from inventory.repair import StockCheck, repair_reserved, stock_check_batch

logger = logging.getLogger("inventory.check")

HELP = """\
Checks every stock row against SPEC §3: reserved equals the sum of the quantities of
its pending reservations, 0 <= reserved <= on_hand, pending reservations fit in
on_hand, and each pending reservation names the product and warehouse of its stock
row. Prints one line per drifting stock row (stock id, sku, warehouse, what differs)
and a summary line. Reads in batches of --batch-size stock rows, one statement each.

--repair sets each drifting row's reserved counter to the sum of its pending
reservations, under the row's lock, and logs every change. Drift it cannot fix
(pending reservations exceeding on_hand, reservations filed under the wrong stock row)
is left for a person and reported.

Exit status: 0 no drift (or, with --repair, every drift found was repaired);
1 drift found and not repaired; 2 invalid arguments.
"""


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Reset drifting reserved counters from the reservation rows.",
        )
        parser.add_argument(
            "--batch-size",
            type=_positive,
            default=1000,
            help="Stock rows per batch (default 1000).",
        )

    def handle(self, *args, repair: bool, batch_size: int, **options) -> None:
        checked = drifting = repaired = lapsed = 0
        after_id = 0
        while batch := stock_check_batch(after_id=after_id, limit=batch_size):
            after_id = batch[-1].stock_id
            checked += len(batch)
            lapsed += sum(row.lapsed for row in batch)
            drift = [row for row in batch if row.problems]
            for row in drift:
                self.stdout.write(f"drift: {self._label(row)}: " + "; ".join(row.problems))
            drifting += len(drift)
            if repair and drift:
                repaired += self._repair(drift)

        left = drifting - repaired
        summary = f"check_inventory: {checked} stock rows checked"
        if not drifting:
            summary += ", no drift"
        else:
            summary += f", {drifting} with drift"
            if repair:
                summary += f", {repaired} repaired, {left} left"
        if lapsed:
            summary += f" ({lapsed} lapsed pending reservations await the sweeper)"
        self.stdout.write(summary)
        if left:
            hint = "" if repair else "; run with --repair to fix the reserved counters"
            raise CommandError(f"inventory drift in {left} stock rows{hint}", returncode=1)

    def _repair(self, drift: list[StockCheck]) -> int:
        """Repairs what resetting the counter can repair; returns how many rows are
        right afterwards."""
        by_id = {row.stock_id: row for row in drift}
        for row in drift:
            if row.misfiled:
                # Reservations filed under another product's row: resetting the counter
                # would not make the row right.
                self.stdout.write(f"not repaired: {self._label(row)}: misfiled reservations")
        fixable = [row.stock_id for row in drift if not row.misfiled]
        done = 0
        for fix in repair_reserved(stock_ids=fixable, actor="check_inventory"):
            label = self._label(by_id[fix.stock_id])
            if fix.after is None:
                self.stdout.write(
                    f"not repaired: {label}: pending reservations do not fit in on_hand; "
                    "release reservations or set the stock"
                )
                continue
            if fix.before == fix.after:  # put right meanwhile
                self.stdout.write(f"consistent now: {label}")
            else:
                self.stdout.write(f"repaired: {label}: reserved {fix.before} -> {fix.after}")
            done += 1
        return done

    @staticmethod
    def _label(row: StockCheck) -> str:
        return f"stock {row.stock_id} sku={row.sku} warehouse={row.warehouse}"
