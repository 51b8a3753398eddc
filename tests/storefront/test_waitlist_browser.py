"""The waitlist of a sold-out product and the scarcity hold in the storefront (SPEC §15),
in a real headless Chromium against the live server.

A shopper joins on the product page and sees the place in line, kept current while the
page is open; units another shopper gives back become an offer, shown held in the cart
with its countdown; checking out claims it; an offer that lapses passes to the next
shopper in line. A checkout of a scarce line shows the shorter hold and why. The other
shoppers use the REST API (``tests.support.Shopper``); stock changes go through the
services. With ``UPDATE_SCREENSHOTS=1`` each state is saved at 1280 and 375 px wide in
``docs/screenshots/``.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from carts.models import Cart, CartItem
from inventory import services
from inventory.models import Reservation, ReservationStatus, StockLevel, WaitlistEntry
from orders.models import Order
from storefront.cart_cookie import COOKIE_NAME
from tests.storefront.browser import (
    TIMES,
    expect_confirmation,
    fill_details,
    place_order,
    start_checkout_from_cart,
)
from tests.support import Shopper

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# WAITLIST_OFFER_TTL_SECONDS is 300: an offer just made shows 5:00 down to 4:00 or so.
FRESH_OFFER = re.compile(r"^[45]:\d\d$")


@pytest.fixture(autouse=True)
def _quick_polls(settings):
    """The pages read the waitlist every second, so a test sees a change at once."""
    settings.STOREFRONT_WAITLIST_POLL_SECONDS = 1


def snapshots(browser, name: str) -> None:
    """The current page at 1280 and 375 px wide (saved only with UPDATE_SCREENSHOTS=1),
    checked to fit its window at both widths."""
    page = browser.page
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), width
        browser.snapshot(f"{name}-{width}")
    page.set_viewport_size({"width": 1100, "height": 800})


def sold_out_scarf(stocked_product) -> tuple[object, Shopper]:
    """A scarf whose only unit another shopper holds in checkout (through the API)."""
    scarf = stocked_product(name="Wool scarf", on_hand=1, price="30.00")
    holder = Shopper()
    holder.create_cart()
    assert holder.add(scarf.sku, 1).status_code == 201
    assert holder.start().status_code == 201
    return scarf, holder


def api_shopper_waiting(product, quantity: int = 1) -> Shopper:
    shopper = Shopper()
    shopper.create_cart()
    response = shopper.call(
        "post", f"carts/{shopper.cart_id}/waitlist/", {"sku": product.sku, "quantity": quantity}
    )
    assert response.status_code == 201, response.content
    return shopper


def browser_cart_id(page) -> str:
    return {c["name"]: c["value"] for c in page.context.cookies()}[COOKIE_NAME].split(":")[0]


def entry_of(cart_id, product) -> WaitlistEntry:
    return WaitlistEntry.objects.filter(cart_id=cart_id, product=product).latest("id")


def waitlist_section(page):
    return page.get_by_role("region", name="Waitlist")


def join(page, quantity: int = 1) -> None:
    section = waitlist_section(page)
    section.get_by_label("How many to wait for").fill(str(quantity))
    section.get_by_role("button", name="Join the waitlist").click()


def lapse_offer(entry: WaitlistEntry) -> None:
    """Time passes for the offer: its hold and its entry expire in the past (stock numbers
    untouched), as if the shopper had not come back in time."""
    past = timezone.now() - timedelta(seconds=5)
    Reservation.objects.filter(waitlist_entry=entry, status=ReservationStatus.PENDING).update(
        expires_at=past
    )
    WaitlistEntry.objects.filter(id=entry.id).update(offer_expires_at=past)


# --- join ---------------------------------------------------------------------------------


def test_join_shows_the_place_in_line_and_keeps_it_current(browser, stocked_product):
    page = browser.page
    scarf, _holder = sold_out_scarf(stocked_product)
    ahead = api_shopper_waiting(scarf)

    browser.open(f"/products/{scarf.sku}/")
    expect(page.locator("[data-stock] .badge")).to_have_text("Out of stock")
    expect(page.get_by_role("button", name="Sold out")).to_be_disabled()
    section = waitlist_section(page)
    expect(section.get_by_role("button", name="Join the waitlist")).to_be_visible()
    expect(section).to_contain_text("First come, first served")
    snapshots(browser, "product-waitlist-join")

    join(page)

    status = section.get_by_role("status")
    expect(status).to_have_text("You are number 2 in line.")
    expect(status).to_be_focused()
    expect(section.get_by_role("button", name="Join the waitlist")).to_be_hidden()
    expect(section.get_by_role("button", name="Leave the waitlist")).to_be_visible()
    cart_id = browser_cart_id(page)
    entry = entry_of(cart_id, scarf)
    assert (entry.status, entry.quantity) == ("waiting", 1)
    snapshots(browser, "product-waitlist-waiting")

    # The shopper ahead leaves: the open page moves this shopper up, by itself.
    assert (
        ahead.call(
            "delete", f"carts/{ahead.cart_id}/waitlist/{entry_of(ahead.cart_id, scarf).id}/"
        ).status_code
        == 200
    )
    expect(status).to_have_text("You are number 1 in line.")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # The cart page lists what the shopper waits for, with the place in line.
    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    waiting = page.get_by_role("region", name="Waiting for")
    expect(waiting.locator(f'li[data-sku="{scarf.sku}"]')).to_contain_text(
        f"Wool scarf {TIMES} 1: number 1 in line"
    )
    snapshots(browser, "cart-waitlist-waiting")

    browser.open(f"/products/{scarf.sku}/")
    section.get_by_role("button", name="Leave the waitlist").click()
    expect(status).to_have_text("You left the waitlist.")
    expect(section.get_by_role("button", name="Join the waitlist")).to_be_visible()
    assert entry_of(cart_id, scarf).status == "cancelled"
    assert StockLevel.objects.get(product=scarf).waitlisted == 0


def test_joining_what_is_in_stock_again_says_to_add_it_instead(browser, stocked_product):
    page = browser.page
    scarf, holder = sold_out_scarf(stocked_product)
    browser.open(f"/products/{scarf.sku}/")
    expect(waitlist_section(page).get_by_role("button", name="Join the waitlist")).to_be_visible()

    assert holder.cancel().status_code == 200  # the unit is free again, nobody waits
    join(page)

    alert = page.locator('[data-notice] [data-error-code="STOCK_AVAILABLE"]')
    expect(alert).to_contain_text("It is in stock now")
    expect(alert).to_contain_text("add it to your cart instead")
    # The page reads the stock again: the add form is back, the waitlist goes away.
    expect(page.get_by_role("button", name="Add Wool scarf to cart")).to_be_enabled()
    expect(waitlist_section(page)).to_be_hidden()
    assert not WaitlistEntry.objects.exists()


# --- offer --------------------------------------------------------------------------------


def test_an_offer_appears_held_in_the_open_cart_with_its_countdown(browser, stocked_product):
    page = browser.page
    scarf, holder = sold_out_scarf(stocked_product)
    browser.open(f"/products/{scarf.sku}/")
    join(page)
    expect(waitlist_section(page).get_by_role("status")).to_have_text("You are number 1 in line.")
    cart_id = browser_cart_id(page)

    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    expect(page.get_by_text("Your cart is empty.")).to_be_visible()
    expect(page.get_by_role("region", name="Waiting for")).to_contain_text("number 1 in line")

    # The other shopper gives the unit back (cancels the checkout through the API): it is
    # offered to this shopper in the same transaction, and the open cart page shows it.
    assert holder.cancel().status_code == 200
    line = page.locator(f'tbody[data-lines] tr[data-sku="{scarf.sku}"]')
    expect(line).to_be_visible()
    expect(line.locator(".badge")).to_have_text("Held for you")
    expect(line.get_by_role("timer")).to_have_text(FRESH_OFFER)
    offer = page.locator("[data-offer-notice]")
    expect(offer).to_contain_text("It is your turn")
    expect(offer).to_contain_text(f"1 {TIMES} Wool scarf is in your cart, held for you for")
    expect(offer.get_by_role("timer")).to_have_text(FRESH_OFFER)
    expect(offer.get_by_role("button", name="Check out now")).to_be_enabled()
    expect(page.get_by_role("region", name="Waiting for")).to_be_hidden()
    expect(page.locator("[data-cart-count]")).to_have_text("(1 item)")
    snapshots(browser, "cart-waitlist-offer")

    entry = entry_of(cart_id, scarf)
    assert entry.status == "offered"
    [held] = Reservation.objects.filter(cart_id=cart_id, status=ReservationStatus.PENDING)
    assert (held.waitlist_entry_id, held.quantity) == (entry.id, 1)
    assert Cart.objects.get(id=cart_id).status == "active"

    # The product page says the same, with its own countdown and a way to check out.
    browser.open(f"/products/{scarf.sku}/")
    section = waitlist_section(page)
    expect(section.get_by_role("status")).to_have_text(
        f"It is your turn: 1 {TIMES} Wool scarf is in your cart, held for you."
    )
    expect(section.get_by_role("timer")).to_have_text(FRESH_OFFER)
    expect(section.get_by_role("link", name="Check out now")).to_be_visible()
    expect(section.get_by_role("button", name="Give up my turn")).to_be_visible()
    snapshots(browser, "product-waitlist-offer")


def test_giving_up_an_offered_line_passes_it_on_at_once(browser, stocked_product):
    page = browser.page
    scarf, holder = sold_out_scarf(stocked_product)
    browser.open(f"/products/{scarf.sku}/")
    join(page)
    expect(waitlist_section(page).get_by_role("status")).to_have_text("You are number 1 in line.")
    cart_id = browser_cart_id(page)
    behind = api_shopper_waiting(scarf)
    assert holder.cancel().status_code == 200  # offered to this shopper

    browser.open("/cart/")
    line = page.locator(f'tbody[data-lines] tr[data-sku="{scarf.sku}"]')
    expect(line.locator(".badge")).to_have_text("Held for you")
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    line.get_by_role("button", name="Remove Wool scarf").click()

    expect(page.get_by_text("Your cart is empty.")).to_be_visible()
    expect(page.locator("[data-offer-notice]")).to_be_hidden()
    assert questions and "Give up your turn for Wool scarf?" in questions[0]
    assert entry_of(cart_id, scarf).status == "cancelled"
    assert not Reservation.objects.filter(
        cart_id=cart_id, status=ReservationStatus.PENDING
    ).exists()
    # The hold went to the shopper behind, in the same transaction.
    assert entry_of(behind.cart_id, scarf).status == "offered"
    assert (
        Reservation.objects.get(status=ReservationStatus.PENDING).cart_id
        == entry_of(behind.cart_id, scarf).cart_id
    )


def test_leaving_a_waitlist_from_the_cart_page(browser, stocked_product):
    page = browser.page
    scarf, _holder = sold_out_scarf(stocked_product)
    browser.open(f"/products/{scarf.sku}/")
    join(page, quantity=2)
    expect(waitlist_section(page).get_by_role("status")).to_have_text("You are number 1 in line.")
    cart_id = browser_cart_id(page)

    browser.open("/cart/")
    waiting = page.get_by_role("region", name="Waiting for")
    expect(waiting).to_contain_text(f"Wool scarf {TIMES} 2: number 1 in line")
    waiting.get_by_role("button", name="Leave the waitlist for Wool scarf").click()

    expect(waiting).to_be_hidden()
    assert entry_of(cart_id, scarf).status == "cancelled"
    assert StockLevel.objects.get(product=scarf).waitlisted == 0
    browser.open(f"/products/{scarf.sku}/")
    expect(waitlist_section(page).get_by_role("button", name="Join the waitlist")).to_be_visible()
    expect(waitlist_section(page).get_by_role("status")).to_have_text("")


def test_a_turn_that_comes_during_checkout_passes_on_as_the_cart_page_warned(
    browser, stocked_product
):
    page = browser.page
    scarf, holder = sold_out_scarf(stocked_product)
    mug = stocked_product(name="Blue mug", on_hand=20, price="12.50")
    browser.open(f"/products/{scarf.sku}/")
    join(page)
    expect(waitlist_section(page).get_by_role("status")).to_have_text("You are number 1 in line.")
    cart_id = browser_cart_id(page)
    behind = api_shopper_waiting(scarf)
    browser.open(f"/products/{mug.sku}/")
    page.get_by_role("button", name="Add Blue mug to cart").click()
    expect(page.locator("[data-cart-count]")).to_have_text("(1 item)")
    start_checkout_from_cart(page)

    browser.open("/cart/")
    waiting = page.get_by_role("region", name="Waiting for")
    expect(waiting).to_contain_text("number 1 in line")
    expect(waiting.locator("[data-waitlist-checkout-warning]")).to_have_text(
        "While your checkout is open, a turn that comes passes to the next shopper in line. "
        "Finish or cancel the checkout to keep your place."
    )

    assert holder.cancel().status_code == 200
    expect(waiting).to_be_hidden()
    assert entry_of(cart_id, scarf).status == "cancelled"
    assert entry_of(behind.cart_id, scarf).status == "offered"
    assert not CartItem.objects.filter(cart_id=cart_id, product=scarf).exists()


# --- claim --------------------------------------------------------------------------------


def test_checking_out_the_offered_line_claims_it(browser, stocked_product):
    page = browser.page
    scarf, holder = sold_out_scarf(stocked_product)
    browser.open(f"/products/{scarf.sku}/")
    join(page)
    section = waitlist_section(page)
    expect(section.get_by_role("status")).to_have_text("You are number 1 in line.")
    cart_id = browser_cart_id(page)

    assert holder.cancel().status_code == 200
    # The open product page learns of the offer by itself.
    expect(section.get_by_role("status")).to_have_text(
        f"It is your turn: 1 {TIMES} Wool scarf is in your cart, held for you.", timeout=5_000
    )
    expect(page.locator("[data-cart-count]")).to_have_text("(1 item)")
    section.get_by_role("link", name="Check out now").click()

    expect(page).to_have_url(re.compile(r"/checkout/$"))
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^\d+:\d\d$"))
    assert Cart.objects.get(id=cart_id).status == "checkout"
    entry = entry_of(cart_id, scarf)
    assert entry.status == "claimed"
    fill_details(page)
    place_order(page)

    order = expect_confirmation(page)
    assert str(order.cart_id) == cart_id
    assert [(i.product_id, i.quantity) for i in order.items.all()] == [(scarf.id, 1)]
    stock = StockLevel.objects.get(product=scarf)
    assert (stock.on_hand, stock.reserved, stock.waitlisted) == (0, 0, 0)
    assert not Order.objects.filter(cart_id=holder.cart_id).exists()


# --- a lapsed offer passes on ---------------------------------------------------------------


def test_a_lapsed_offer_passes_to_the_next_shopper(browser, stocked_product):
    page = browser.page
    scarf, holder = sold_out_scarf(stocked_product)
    first = api_shopper_waiting(scarf)  # first in line, through the API

    browser.open(f"/products/{scarf.sku}/")
    join(page)
    section = waitlist_section(page)
    status = section.get_by_role("status")
    expect(status).to_have_text("You are number 2 in line.")
    cart_id = browser_cart_id(page)

    # The unit comes back: it is offered to the first shopper, this one moves up.
    assert holder.cancel().status_code == 200
    expect(status).to_have_text("You are number 1 in line.")
    first_entry = entry_of(first.cart_id, scarf)
    assert first_entry.status == "offered"

    # The first shopper does not come back in time; the sweeper ends the offer and hands
    # the unit to the next in line, in the same transaction.
    lapse_offer(first_entry)
    assert services.expire_due(batch_size=100, actor="sweeper") == 1

    expect(status).to_have_text(
        f"It is your turn: 1 {TIMES} Wool scarf is in your cart, held for you."
    )
    expect(section.get_by_role("timer")).to_have_text(FRESH_OFFER)
    assert entry_of(first.cart_id, scarf).status == "expired"
    mine = entry_of(cart_id, scarf)
    assert mine.status == "offered"
    assert (
        Reservation.objects.get(waitlist_entry=mine, status=ReservationStatus.PENDING).cart_id
        == mine.cart_id
    )

    # The first shopper's view: the line the offer put in the cart is still there, and
    # both the cart and the product page say where the turn went.
    assert CartItem.objects.filter(cart_id=first.cart_id, product=scarf).exists()
    page.context.add_cookies(
        [{"name": COOKIE_NAME, "value": f"{first.cart_id}:{first.token}", "url": browser.base_url}]
    )
    page.evaluate("localStorage.clear()")
    browser.open("/cart/")
    line = page.locator(f'tbody[data-lines] tr[data-sku="{scarf.sku}"]')
    expect(line).to_contain_text(
        "Your turn for this item ran out and passed to the next shopper in line."
    )
    expect(line.locator(".badge")).to_have_text("Out of stock")
    expect(page.get_by_role("button", name="Go to checkout")).to_be_disabled()
    snapshots(browser, "cart-waitlist-lapsed")
    browser.open(f"/products/{scarf.sku}/")
    expect(section.get_by_role("status")).to_have_text(
        "Your turn came, but the hold ran out before checkout, so it passed to the next "
        "shopper in line."
    )
    expect(section.get_by_role("button", name="Join the waitlist")).to_be_visible()
    snapshots(browser, "product-waitlist-lapsed")


# --- scarcity -------------------------------------------------------------------------------


def test_a_checkout_of_a_scarce_item_shows_the_shorter_hold_and_why(
    browser, stocked_product, settings
):
    settings.SCARCITY_TTL_SECONDS = 120
    settings.CHECKOUT_RESERVATION_TTL_SECONDS = 300
    page = browser.page
    lamp = stocked_product(name="Desk lamp", on_hand=3, price="40.00")  # 2 left after 1

    browser.open(f"/products/{lamp.sku}/")
    page.get_by_role("button", name="Add Desk lamp to cart").click()
    expect(page.locator("[data-cart-count]")).to_have_text("(1 item)")
    start_checkout_from_cart(page)

    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^(2:00|1:[0-5]\d)$"))
    why = page.locator("[data-high-demand]")
    expect(why).to_have_text(
        "High demand: Desk lamp is held for 2 minutes only, so that more shoppers get a turn."
    )
    held = Reservation.objects.get(product=lamp, status=ReservationStatus.PENDING)
    assert held.expires_at - timezone.now() <= timedelta(seconds=120)
    snapshots(browser, "checkout-high-demand")


def test_a_checkout_of_a_plentiful_item_has_no_high_demand_line(browser, stocked_product):
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=50, price="12.50")

    browser.open(f"/products/{mug.sku}/")
    page.get_by_role("button", name="Add Blue mug to cart").click()
    expect(page.locator("[data-cart-count]")).to_have_text("(1 item)")
    start_checkout_from_cart(page)

    expect(page.locator("[data-countdown]")).to_have_text(FRESH_OFFER)
    expect(page.locator("[data-high-demand]")).to_be_hidden()
