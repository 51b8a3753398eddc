"""Stock changes in the admin (SPEC §13): set or adjust on hand with a reason, import
stock levels from CSV or XLSX with a preview, the stock ledger; every change through the
reservation service, a row below reserved refused with its reason while the rest applies."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from inventory import services
from inventory.models import StockLedgerEntry, StockLevel
from tests.support import numbers
from tests.support.factories import StockLevelFactory

pytestmark = pytest.mark.django_db

IMPORT = reverse("admin:inventory_stocklevel_import")
PROCESS = reverse("admin:inventory_stocklevel_process_import")
CSV_FORMAT, XLSX_FORMAT = "0", "1"


def adjust_url(stock: StockLevel) -> str:
    return reverse("admin:inventory_stocklevel_adjust", args=[stock.pk])


def ledger(stock: StockLevel) -> list[tuple[int, int, str, str]]:
    return [
        (e.delta, e.on_hand_after, e.reason, e.actor)
        for e in StockLedgerEntry.objects.filter(stock_level=stock).order_by("id")
    ]


# --- set or adjust one stock level ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "quantity", "on_hand", "delta"),
    [("set", 30, 30, 13), ("add", 5, 22, 5), ("remove", 4, 13, -4)],
)
def test_staff_set_or_adjust_on_hand_with_a_reason(
    staff_browser, shop, mode, quantity, on_hand, delta
):
    stock = shop.stock_a  # 17 on hand (3 sold), 2 reserved
    response = staff_browser.post(
        adjust_url(stock),
        {"mode": mode, "quantity": quantity, "reason": "stock count"},
        follow=True,
    )
    assert response.status_code == 200
    assert numbers(stock) == (on_hand, 2)
    assert ledger(stock) == [(delta, on_hand, "stock count", "admin:ops-admin")]
    said = [str(m) for m in response.context["messages"]]
    assert said == [f"ALPHA-1 @ default: on hand is now {on_hand} (2 reserved)."]


def test_an_adjustment_below_reserved_is_refused_with_its_reason(staff_browser, shop):
    stock = shop.stock_a
    response = staff_browser.post(
        adjust_url(stock), {"mode": "set", "quantity": 1, "reason": "count"}
    )
    assert response.status_code == 200
    assert "Refused: on hand would be 1, below the 2 reserved." in response.content.decode()
    assert numbers(stock) == (17, 2)
    assert ledger(stock) == []


def test_a_reason_is_required(staff_browser, shop):
    response = staff_browser.post(adjust_url(shop.stock_a), {"mode": "add", "quantity": 1})
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert ledger(shop.stock_a) == []


def test_the_stock_level_page_links_to_the_adjustment_and_shows_the_ledger(staff_browser, shop):
    services.set_stock(
        product=shop.stock_a.product,
        warehouse=shop.stock_a.warehouse,
        on_hand=40,
        actor="staff:x",
        reason="delivery 42",
    )
    change = reverse("admin:inventory_stocklevel_change", args=[shop.stock_a.pk])
    page = staff_browser.get(change).content.decode()
    assert adjust_url(shop.stock_a) in page
    assert "delivery 42" in page
    assert "ALPHA-1 @ default" in page


def test_viewers_may_not_adjust(viewer_browser, shop):
    response = viewer_browser.post(
        adjust_url(shop.stock_a), {"mode": "add", "quantity": 1, "reason": "x"}
    )
    assert response.status_code == 403
    assert ledger(shop.stock_a) == []


def test_the_ledger_list_opens_for_staff(staff_browser, shop):
    services.adjust_stock(
        product=shop.stock_b.product,
        warehouse=shop.stock_b.warehouse,
        delta=2,
        actor="staff:x",
        reason="return",
    )
    response = staff_browser.get(
        reverse("admin:inventory_stockledgerentry_changelist"), {"q": "BRAVO-2"}
    )
    assert response.status_code == 200
    assert [e.reason for e in response.context["cl"].result_list] == ["return"]


# --- import -----------------------------------------------------------------------------


def csv_file(rows: list[tuple[str, str, object]]) -> SimpleUploadedFile:
    text = "sku,warehouse,on_hand\n" + "".join(f"{s},{w},{n}\n" for s, w, n in rows)
    return SimpleUploadedFile("stock.csv", text.encode(), content_type="text/csv")


def xlsx_file(rows: list[tuple[str, str, object]]) -> SimpleUploadedFile:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["sku", "warehouse", "on_hand"])
    for row in rows:
        sheet.append(list(row))
    data = io.BytesIO()
    book.save(data)
    return SimpleUploadedFile("stock.xlsx", data.getvalue())


def preview(client, upload: SimpleUploadedFile, file_format: str, reason: str = "count"):
    response = client.post(
        IMPORT, {"import_file": upload, "format": file_format, "resource": "0", "reason": reason}
    )
    assert response.status_code == 200, response.content[:500]
    return response


ROWS = [
    ("ALPHA-1", "default", 50),  # 17 on hand -> 50
    ("BRAVO-2", "", 1),  # 4 reserved, 2 of them lapsed: 2 stay -> refused
    ("EAST-3", "east", 9),  # 4 on hand -> 9
]


@pytest.mark.parametrize(
    ("make", "file_format"), [(csv_file, CSV_FORMAT), (xlsx_file, XLSX_FORMAT)]
)
def test_an_import_previews_then_applies_all_but_the_refused_row(
    staff_browser, shop, make, file_format
):
    before_b = numbers(shop.stock_b)

    shown = preview(staff_browser, make(ROWS), file_format)

    # The preview writes nothing and says what each row will do.
    result = shown.context["result"]
    assert [row.import_type for row in result.rows] == ["update", "skip", "update"]
    page = shown.content.decode()
    assert "refused: on_hand 1 is below the 2 reserved" in page
    assert numbers(shop.stock_a) == (17, 2)
    assert StockLedgerEntry.objects.count() == 0

    confirm = shown.context["confirm_form"]
    done = staff_browser.post(PROCESS, dict(confirm.initial), follow=True)

    assert done.status_code == 200
    assert numbers(shop.stock_a) == (50, 2)
    assert numbers(shop.stock_b) == before_b  # refused: nothing changed, not even the reclaim
    assert numbers(shop.stock_east) == (9, 1)
    assert ledger(shop.stock_a) == [(33, 50, "count", "admin:ops-admin")]
    assert ledger(shop.stock_east) == [(5, 9, "count", "admin:ops-admin")]
    assert ledger(shop.stock_b) == []
    said = [str(m) for m in done.context["messages"]]
    assert "Imported 2 stock level(s)." in said
    assert (
        "Refused 1: line 3: BRAVO-2 @ default: refused: on_hand 1 is below the 2 reserved" in said
    )


def test_an_import_with_an_unknown_sku_is_not_offered_for_confirmation(staff_browser, shop):
    shown = preview(staff_browser, csv_file([("ALPHA-1", "default", 5), ("NOPE", "", 1)]), "0")
    assert "confirm_form" not in shown.context or shown.context["confirm_form"] is None
    assert "no product with sku &#x27;NOPE&#x27;" in shown.content.decode()
    assert numbers(shop.stock_a) == (17, 2)


def test_an_import_refuses_a_bad_quantity(staff_browser, shop):
    shown = preview(staff_browser, csv_file([("ALPHA-1", "default", "-3")]), "0")
    assert "not a whole number" in shown.content.decode()
    assert "confirm_form" not in shown.context or shown.context["confirm_form"] is None


def test_an_import_creates_a_missing_stock_level(staff_browser, shop):
    product = StockLevelFactory(on_hand=0, product__sku="NEW-1").product
    StockLevel.objects.filter(product=product).delete()
    shown = preview(staff_browser, csv_file([("NEW-1", "east", 12)]), "0")
    assert [row.import_type for row in shown.context["result"].rows] == ["new"]
    staff_browser.post(PROCESS, dict(shown.context["confirm_form"].initial))
    created = StockLevel.objects.get(product=product, warehouse__code="east")
    assert (created.on_hand, created.reserved) == (12, 0)
    assert ledger(created) == [(12, 12, "count", "admin:ops-admin")]


def test_the_import_page_asks_for_a_file_a_format_and_a_reason(staff_browser, shop):
    response = staff_browser.get(IMPORT)
    assert response.status_code == 200
    assert set(response.context["form"].fields) >= {"import_file", "format", "reason"}
    formats = dict(response.context["form"].fields["format"].choices)
    assert {label.lower() for label in formats.values() if label} >= {"csv", "xlsx"}


def test_viewers_may_not_import(viewer_browser, shop):
    assert viewer_browser.get(IMPORT).status_code == 403
