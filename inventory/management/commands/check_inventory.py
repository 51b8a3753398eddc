"""``manage.py check_inventory [--repair] [--batch-size N]``: checks the stock invariants
of SPEC §3 and the waitlist bookkeeping of SPEC §15 over the whole database and reports
(and with ``--repair`` fixes) drift."""

from __future__ import annotations

import argparse
import logging

from django.core.management.base import BaseCommand, CommandError

from inventory.repair import (
    Finding,
    StockCheck,
    WaitlistFinding,
    end_offers_without_hold,
    missed_offers,
    open_waitlist_entries,
    repair_reserved,
    repair_waitlisted,
    serve_missed_offers,
    stock_check_batch,
    waitlist_findings,
)

logger = logging.getLogger("inventory.check")

ACTOR = "check_inventory"

HELP = """\
Checks every stock row against SPEC §3: reserved equals the sum of the quantities of
its pending reservations, 0 <= reserved <= on_hand, pending reservations fit in
on_hand, and each pending reservation names the product and warehouse of its stock
row; and its waitlist counter (waitlisted) equals the units its product's waiting
entries want. Then the waitlists (SPEC §15): every offered entry has a pending
reservation holding the offer; every pending reservation holding an offer is for the
entry's cart and product, and the entry is offered or claimed (a lapsed one awaits the
sweeper); and no product's first waiting entry has its whole quantity free in the
warehouses it may use (a missed offer). Prints one line per drifting stock row (stock
id, sku, warehouse, what differs), one per waitlist finding (entry or reservation id,
sku, what is wrong) and a summary line. Reads the stock rows in batches of
--batch-size, one statement each, and each waitlist check in one statement.

--repair sets each drifting row's reserved counter to the sum of its pending
reservations, under the row's lock, sets a drifting waitlisted counter again from the
waiting entries (on every row of the product, all of them locked), ends an offer no
reservation holds any more as lapsed (expired), and runs the waitlist pass for a
product with a missed offer (the offer is made); every change is logged. Drift it
cannot fix (pending reservations exceeding on_hand, reservations filed under the
wrong stock row, a reservation holding an offer that is not its own) is left for a
person and reported.

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
            help="Reset drifting counters from the reservation and waitlist rows, end "
            "offers nothing holds, make missed offers.",
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

        entries = open_waitlist_entries()
        findings = waitlist_findings()
        for finding in findings:
            self.stdout.write(f"drift: {finding.label}: {finding.problem}")
        drifting += len(findings)
        if repair and findings:
            repaired += self._repair_waitlists(findings)

        left = drifting - repaired
        summary = f"check_inventory: {checked} stock rows"
        if entries or findings:
            summary += f" and {entries} open waitlist entries"
        summary += " checked"
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
            hint = "" if repair else "; run with --repair to fix the counters and waitlists"
            raise CommandError(
                f"inventory drift in {left} stock rows or waitlist entries{hint}", returncode=1
            )

    def _repair(self, drift: list[StockCheck]) -> int:
        """Repairs what resetting the counters can repair; returns how many rows are
        right afterwards."""
        by_id = {row.stock_id: row for row in drift}
        right = {row.stock_id: True for row in drift}
        counters = [row for row in drift if row.reserved_problems]
        for row in counters:
            if row.misfiled:
                # Reservations filed under another product's row: resetting the counter
                # would not make the row right.
                self.stdout.write(f"not repaired: {self._label(row)}: misfiled reservations")
                right[row.stock_id] = False
        fixable = [row.stock_id for row in counters if not row.misfiled]
        for fix in repair_reserved(stock_ids=fixable, actor=ACTOR):
            label = self._label(by_id[fix.stock_id])
            if fix.after is None:
                self.stdout.write(
                    f"not repaired: {label}: pending reservations do not fit in on_hand; "
                    "release reservations or set the stock"
                )
                right[fix.stock_id] = False
                continue
            if fix.before == fix.after:  # put right meanwhile
                self.stdout.write(f"consistent now: {label}")
            else:
                self.stdout.write(f"repaired: {label}: reserved {fix.before} -> {fix.after}")
        waitlisted = [row for row in drift if row.waitlisted_problems]
        products = {row.product_id for row in waitlisted}
        for fix in repair_waitlisted(product_ids=products, actor=ACTOR):
            row = by_id.get(fix.stock_id)
            if row is None or not row.waitlisted_problems:
                continue  # another row of the product: in another batch, or right already
            if fix.before == fix.after:
                self.stdout.write(f"consistent now: {self._label(row)}")
            else:
                self.stdout.write(
                    f"repaired: {self._label(row)}: waitlisted {fix.before} -> {fix.after}"
                )
        return sum(right.values())

    def _repair_waitlists(self, findings: list[WaitlistFinding]) -> int:
        """Ends offers nothing holds, makes missed offers; returns how many findings are
        right afterwards."""
        done = 0
        unheld = [f for f in findings if f.kind == Finding.OFFER_WITHOUT_HOLD]
        ended = end_offers_without_hold(entry_ids=[f.entry_id for f in unheld], actor=ACTOR)
        for finding in unheld:
            if finding.entry_id in ended:
                self.stdout.write(f"repaired: {finding.label}: offer ended (expired)")
            else:
                self.stdout.write(f"consistent now: {finding.label}")
            done += 1
        for finding in findings:
            if finding.kind == Finding.OFFER_HOLD_MISPLACED:
                self.stdout.write(
                    f"not repaired: {finding.label}: release the reservation or let it lapse"
                )
        missed = [f for f in findings if f.kind == Finding.MISSED_OFFER]
        if missed:
            products = {f.product_id for f in missed}
            made = serve_missed_offers(product_ids=products, actor=ACTOR)
            still = {f.entry_id for f in missed_offers(product_ids=products)}
            for finding in missed:
                if finding.entry_id in still:
                    self.stdout.write(
                        f"not repaired: {finding.label}: still first in the queue with its "
                        "units free"
                    )
                    continue
                self.stdout.write(
                    f"repaired: {finding.label}: waitlist served, "
                    f"{made[finding.product_id]} offer(s) made"
                )
                done += 1
        return done

    @staticmethod
    def _label(row: StockCheck) -> str:
        return f"stock {row.stock_id} sku={row.sku} warehouse={row.warehouse}"
