"""The admin in a real headless Chromium (SPEC §13): the overview, an order moved to
shipped with a note, a stock import with one refused row; no page wider than its window
at 1280 px, and usable at 375 px. ``UPDATE_SCREENSHOTS=1`` refreshes
``docs/screenshots/admin-*.png``."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from orders import services as orders
from orders.models import Order
from tests.support import build_shop, numbers
from tests.support.factories import StaffFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 375)


@pytest.fixture
def shop_admin(browser):
    """The test shop and a superuser signed in to the admin in the browser."""
    shop = build_shop()
    StaffFactory(username="ops-admin", is_superuser=True)
    page = browser.page
    browser.open("/admin/login/")
    page.get_by_label("Username").fill("ops-admin")
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Overview")
    return shop


def fits_the_window(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def at_each_width(browser, name: str) -> None:
    """Checks the page at 1280 and 375 px: never wider than the window at 1280, and saves
    the screenshots."""
    page = browser.page
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        if width == 1280:
            assert fits_the_window(page), f"{name} is wider than 1280 px"
        browser.snapshot(f"admin-{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_overview_links_each_figure_to_its_list(browser, shop_admin):
    page = browser.page
    overview = page.get_by_role("region", name="Overview")
    expect(overview.get_by_role("heading", name="Stock health")).to_be_visible()
    expect(overview.locator('[data-figure="low-stock"] .shop-figure-value')).to_have_text("1")
    expect(
        overview.locator('[data-figure="captured-without-order"] .shop-figure-value')
    ).to_have_text("1")
    expect(
        overview.locator('[data-figure="checkouts-in-progress"] .shop-figure-value')
    ).to_have_text("2")
    at_each_width(browser, "dashboard")

    overview.locator('[data-figure="low-stock"]').click()

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("EAST-3")


def test_staff_move_an_order_to_shipped_with_a_note(browser, shop_admin):
    order = shop_admin.order
    for status in ("confirmed", "processing"):
        orders.change_order_status(order_id=order.id, status=status, actor="staff:setup")
    page = browser.page
    browser.open("/admin/orders/order/")
    page.locator(f'input[name="_selected_action"][value="{order.pk}"]').check()
    page.locator('select[name="action"]').select_option("mark_shipped")
    page.get_by_role("button", name="Go").click()

    expect(page.locator("h1")).to_have_text("Move orders to shipped")
    expect(page.locator(".shop-objects")).to_contain_text(f"{order.number} (processing)")
    at_each_width(browser, "order-ship-confirm")
    page.get_by_label("Note for the timeline (optional)").fill("DHL 0042, two parcels")
    page.get_by_role("button", name="Move to shipped").click()

    expect(page.locator(".messagelist")).to_contain_text(
        f"Moved 1 order(s) to shipped: {order.number}."
    )
    assert Order.objects.get(pk=order.pk).status == "shipped"
    page.get_by_role("link", name=order.number).click()
    timeline = page.locator("#events-group")
    expect(timeline).to_contain_text("status:processing→shipped")
    expect(timeline).to_contain_text("DHL 0042, two parcels")
    expect(page.locator("address.shop-address").first).to_contain_text("United Kingdom (GB)")
    at_each_width(browser, "order")


def test_a_stock_import_applies_all_rows_but_the_refused_one(browser, shop_admin, tmp_path):
    upload = tmp_path / "stock.csv"
    upload.write_text("sku,warehouse,on_hand\nALPHA-1,default,50\nBRAVO-2,,1\nEAST-3,east,9\n")
    page = browser.page
    browser.open("/admin/inventory/stocklevel/")
    page.get_by_role("link", name="Import").click()
    page.locator('input[name="import_file"]').set_input_files(str(upload))
    page.locator('select[name="format"]').select_option(label="csv")
    page.get_by_label("Reason").fill("quarterly count")
    page.get_by_role("button", name="Submit").click()

    preview = page.locator("table.import-preview")
    expect(preview.locator("tr.skip")).to_contain_text("refused: on_hand 1 is below the 2 reserved")
    expect(preview.locator("tr.update")).to_have_count(2)
    assert numbers(shop_admin.stock_a) == (17, 2)  # nothing written by the preview
    at_each_width(browser, "stock-import-preview")
    page.get_by_role("button", name="Confirm import").click()

    messages = page.locator(".messagelist")
    expect(messages).to_contain_text("Imported 2 stock level(s).")
    expect(messages).to_contain_text("Refused 1: line 3: BRAVO-2 @ default")
    assert numbers(shop_admin.stock_a) == (50, 2)
    assert numbers(shop_admin.stock_east) == (9, 1)
    assert numbers(shop_admin.stock_b) == (20, 4)
    at_each_width(browser, "stock-levels")
