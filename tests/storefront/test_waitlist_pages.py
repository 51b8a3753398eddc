"""The waitlist pages as Django serves them (SPEC §15), for a browser without JavaScript and
as the scripts find them: a sold-out product page offers the waitlist, joining and leaving
work as plain form posts on the cart kept in the storefront's cookie, the page shows the
place in line, the offer or how the turn ended, and the pages hand the scripts their
settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from carts import services as cart_services
from carts import waitlist as cart_waitlist
from carts.models import Cart
from checkout.services import cancel_checkout, start_checkout
from inventory import services as inventory_services
from inventory.models import StockLevel, WaitlistEntry
from storefront.cart_cookie import COOKIE_NAME
from tests.support import cart_in_checkout, stocked
from tests.support.checkout import TOKEN

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TIMES = "\N{MULTIPLICATION SIGN}"


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def waitlist_section(page: str) -> str:
    match = re.search(r'<section class="waitlist".*?</section>', page, re.S)
    assert match, "no waitlist section"
    return match.group(0)


def visible(section: str, marker: str) -> bool:
    """Whether the element carrying ``marker`` (a data attribute) is rendered unhidden."""
    tag = re.search(rf"<[^>]*\s{marker}[\s>][^>]*>|<[^>]*\s{marker}>", section)
    assert tag, marker
    return " hidden" not in tag.group(0)


def shopper_cart(client: Client) -> Cart:
    """A cart of the browser (kept in the storefront's cookie)."""
    cart, token = cart_services.create_cart(currency="USD")
    client.cookies[COOKIE_NAME] = f"{cart.id}:{token}"
    return cart


def someone_waiting(sku: str, quantity: int = 1) -> WaitlistEntry:
    cart, _ = cart_services.create_cart(currency="USD")
    return cart_waitlist.join_waitlist(
        cart_id=cart.id, sku=sku, quantity=quantity, actor="test"
    ).entry


def join(client: Client, sku: str, quantity="1", next_url: str | None = None):
    return client.post(
        reverse("storefront:waitlist-join"),
        {"sku": sku, "quantity": quantity, "next": next_url or f"/products/{sku}/"},
        follow=True,
    )


def leave(client: Client, entry_id, next_url: str = "/"):
    return client.post(
        reverse("storefront:waitlist-leave"),
        {"entry_id": str(entry_id), "next": next_url},
        follow=True,
    )


# --- the product page ----------------------------------------------------------------------


def test_a_sold_out_product_page_offers_the_waitlist(client, settings):
    settings.WAITLIST_OFFER_TTL_SECONDS = 300
    settings.STOREFRONT_WAITLIST_POLL_SECONDS = 7
    stocked(on_hand=0, sku="SCARF-1", name="Wool scarf")

    section = waitlist_section(html(client.get("/products/SCARF-1/")))

    assert 'aria-labelledby="waitlist-title"' in section and 'id="waitlist"' in section
    assert visible(section, "data-waitlist")
    assert visible(section, "data-waitlist-join")
    assert not visible(section, "data-waitlist-leave")
    assert not visible(section, "data-waitlist-offer")
    assert 'action="/waitlist/join/"' in section
    assert 'name="sku" value="SCARF-1"' in section
    assert re.search(
        r'<label for="(waitlist-quantity-[^"]+)">How many to wait for</label>', section
    )
    field_id = re.search(r'<label for="(waitlist-quantity-[^"]+)"', section).group(1)
    assert f'<input id="{field_id}" name="quantity"' in section
    assert 'role="status"' in section
    assert "held for 5 minutes" in section
    assert 'data-poll-seconds="7"' in section and 'data-sold-out="true"' in section


def test_a_product_in_stock_keeps_its_waitlist_hidden(client):
    stocked(on_hand=4, sku="MUG-1", name="Blue mug")

    section = waitlist_section(html(client.get("/products/MUG-1/")))

    assert not visible(section, "data-waitlist")
    assert 'data-sold-out="false"' in section


def test_units_withheld_for_the_waitlist_make_the_product_sold_out(client):
    """Stock on hand that shoppers in line wait for is not for sale: the page offers the
    waitlist, not the add button."""
    stock = stocked(on_hand=0, sku="SCARF-1", name="Wool scarf")
    someone_waiting("SCARF-1", quantity=2)
    inventory_services.set_stock(
        product=stock.product, warehouse=stock.warehouse, on_hand=1, actor="test"
    )
    assert StockLevel.objects.get(id=stock.id).waitlisted == 2

    page = html(client.get("/products/SCARF-1/"))

    assert "Out of stock" in page
    assert visible(waitlist_section(page), "data-waitlist-join")


def test_the_product_list_links_a_sold_out_product_to_its_waitlist(client):
    stocked(on_hand=0, sku="SCARF-1", name="Wool scarf")
    stocked(on_hand=4, sku="MUG-1", name="Blue mug")

    page = html(client.get("/"))

    links = re.findall(
        r'<p class="waitlist-link" data-waitlist-link( hidden)?><a href="([^"]+)"', page
    )
    assert sorted(links) == [
        ("", "/products/SCARF-1/#waitlist"),
        (" hidden", "/products/MUG-1/#waitlist"),
    ]
    assert '<span class="visually-hidden"> for Wool scarf</span>' in page


# --- joining and leaving without JavaScript ----------------------------------------------------


def test_joining_creates_a_cart_in_the_cookie_and_shows_the_place_in_line(client):
    stocked(on_hand=0, sku="SCARF-1", name="Wool scarf")
    someone_waiting("SCARF-1")

    response = join(client, "SCARF-1", "2")

    assert response.redirect_chain == [("/products/SCARF-1/", 302)]
    cart_id, _, _ = client.cookies[COOKIE_NAME].value.partition(":")
    entry = WaitlistEntry.objects.get(cart_id=cart_id)
    assert (entry.product.sku, entry.quantity, entry.status) == ("SCARF-1", 2, "waiting")
    page = html(response)
    assert "You are number 2 in line for Wool scarf." in page  # the message
    section = waitlist_section(page)
    assert "You are number 2 in line." in section
    assert not visible(section, "data-waitlist-join")
    assert visible(section, "data-waitlist-leave")
    assert f'name="entry_id" value="{entry.id}"' in section
    assert ">Leave the waitlist</button>" in section


def test_joining_again_changes_the_quantity_and_keeps_the_place(client):
    stocked(on_hand=0, sku="SCARF-1", name="Wool scarf")
    cart = shopper_cart(client)
    join(client, "SCARF-1", "1")
    someone_waiting("SCARF-1")

    page = html(join(client, "SCARF-1", "3"))

    [entry] = WaitlistEntry.objects.filter(cart=cart)
    assert (entry.quantity, entry.status) == (3, "waiting")
    assert "You are number 1 in line." in waitlist_section(page)


def test_leaving_ends_the_place_in_line(client):
    stocked(on_hand=0, sku="SCARF-1", name="Wool scarf")
    cart = shopper_cart(client)
    join(client, "SCARF-1")
    entry = WaitlistEntry.objects.get(cart=cart)

    page = html(leave(client, entry.id, next_url="/products/SCARF-1/"))

    entry.refresh_from_db()
    assert entry.status == "cancelled"
    assert "You left the waitlist for Wool scarf." in page
    section = waitlist_section(page)
    assert visible(section, "data-waitlist-join") and not visible(section, "data-waitlist-leave")
    assert "You are number" not in section
    assert StockLevel.objects.get(product=entry.product).waitlisted == 0


def test_leaving_another_carts_place_is_refused(client):
    stocked(on_hand=0, sku="SCARF-1", name="Wool scarf")
    shopper_cart(client)
    theirs = someone_waiting("SCARF-1")

    page = html(leave(client, theirs.id))

    assert "We could not find that place in line." in page
    theirs.refresh_from_db()
    assert theirs.status == "waiting"


def test_leaving_without_a_cart_or_with_a_bad_id_is_refused(client):
    assert "We could not find that place in line." in html(leave(client, 1))
    shopper_cart(client)
    assert "We could not find that place in line." in html(leave(client, "abc"))


def test_joining_for_what_is_in_stock_says_to_add_it_instead(client):
    stocked(on_hand=5, sku="MUG-1", name="Blue mug")

    page = html(join(client, "MUG-1", "2"))

    assert "Blue mug is in stock now, so there is no need to wait: add it to your cart." in page
    assert not WaitlistEntry.objects.exists()


def test_a_cart_in_checkout_cannot_join(client):
    mug = stocked(on_hand=5, sku="MUG-1")
    stocked(on_hand=0, sku="SCARF-1", name="Wool scarf")
    cart = cart_in_checkout((mug, 1))
    client.cookies[COOKIE_NAME] = f"{cart.id}:{TOKEN}"

    page = html(join(client, "SCARF-1"))

    assert "Your cart is in checkout, so it cannot join a waitlist." in page
    assert not WaitlistEntry.objects.exists()


@pytest.mark.parametrize("quantity", ["0", "1001", "two"])
def test_joining_needs_a_sensible_quantity(client, quantity):
    stocked(on_hand=0, sku="SCARF-1")

    page = html(join(client, "SCARF-1", quantity))

    assert "Enter a quantity between 1 and 1000." in page
    assert not WaitlistEntry.objects.exists()


def test_joining_an_unknown_product_is_not_found(client):
    response = client.post(reverse("storefront:waitlist-join"), {"sku": "NOPE", "quantity": "1"})
    assert response.status_code == 404


def test_the_waitlist_posts_go_back_to_this_site_only(client):
    stocked(on_hand=0, sku="SCARF-1")
    response = client.post(
        reverse("storefront:waitlist-join"),
        {"sku": "SCARF-1", "quantity": "1", "next": "https://elsewhere.example/"},
    )
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_waitlist_pages_only_take_posts(client):
    assert client.get(reverse("storefront:waitlist-join")).status_code == 405
    assert client.get(reverse("storefront:waitlist-leave")).status_code == 405


# --- an offer, and how a turn ended ----------------------------------------------------------


def _offered(client: Client, *, settings) -> WaitlistEntry:
    """The browser's cart waits for the only scarf; the holder gives it back: offered."""
    settings.WAITLIST_OFFER_TTL_SECONDS = 300
    stock = stocked(on_hand=1, sku="SCARF-1", name="Wool scarf")
    holder = cart_in_checkout((stock, 1), token="holder-token")
    cart = shopper_cart(client)
    join(client, "SCARF-1")
    cancel_checkout(cart_id=holder.id, actor="test")
    entry = WaitlistEntry.objects.get(cart=cart)
    assert entry.status == "offered"
    return entry


def test_an_offer_shows_the_hold_and_the_way_to_check_out(client, settings):
    _offered(client, settings=settings)

    page = html(client.get("/products/SCARF-1/"))

    section = waitlist_section(page)
    assert f"It is your turn: 1 {TIMES} Wool scarf is in your cart, held for you." in section
    assert visible(section, "data-waitlist-offer")
    assert re.search(r'role="timer"[^>]*data-offer-countdown>[45]:\d\d<', section)
    assert 'href="/checkout/">Check out now</a>' in section
    assert ">Give up my turn</button>" in section
    assert 'data-entry-status="offered"' in section
    assert '(1<span class="visually-hidden"> item</span>)' in page  # the line is in the cart


def test_a_lapsed_turn_is_explained_and_the_waitlist_offered_again(client, settings):
    entry = _offered(client, settings=settings)
    someone_waiting("SCARF-1")
    past = timezone.now() - timedelta(seconds=5)
    entry.offer_reservations.update(expires_at=past)
    WaitlistEntry.objects.filter(id=entry.id).update(offer_expires_at=past)
    assert inventory_services.expire_due(batch_size=10, actor="sweeper") == 1

    section = waitlist_section(html(client.get("/products/SCARF-1/")))

    assert "Your turn came, but the hold ran out before checkout" in section
    assert visible(section, "data-waitlist-join")
    assert not visible(section, "data-waitlist-offer")


def test_a_claimed_turn_says_it_went_to_checkout(client, settings):
    entry = _offered(client, settings=settings)
    start_checkout(cart_id=entry.cart_id, actor="test")
    entry.refresh_from_db()
    assert entry.status == "claimed"

    section = waitlist_section(html(client.get("/products/SCARF-1/")))

    assert f"Your turn came and 1 {TIMES} Wool scarf went to checkout with your cart." in section
    assert not visible(section, "data-waitlist-leave")


# --- what the scripts get --------------------------------------------------------------------


def test_the_cart_page_hands_its_script_the_waitlist_poll_interval(client, settings):
    settings.STOREFRONT_WAITLIST_POLL_SECONDS = 4
    settings.WAITLIST_OFFER_TTL_SECONDS = 120
    page = html(client.get("/cart/"))
    assert 'data-waitlist-poll-seconds="4"' in page
    assert 'aria-labelledby="waitlists-title"' in page and "data-offer-notice" in page
    assert "hold it for you for 2 minutes" in page


def test_the_checkout_page_has_a_place_for_the_high_demand_line(client):
    page = html(client.get("/checkout/"))
    assert '<p class="high-demand" data-high-demand hidden></p>' in page


def _setting(value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STOREFRONT_WAITLIST_POLL_SECONDS"}
    if value is not None:
        env["STOREFRONT_WAITLIST_POLL_SECONDS"] = value
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.STOREFRONT_WAITLIST_POLL_SECONDS)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("value", "expected"), [(None, "10"), ("3", "3")])
def test_the_waitlist_poll_interval_comes_from_the_environment(value, expected):
    result = _setting(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("value", ["0", "often"])
def test_an_invalid_waitlist_poll_interval_stops_startup(value):
    result = _setting(value)
    assert result.returncode != 0
    assert "STOREFRONT_WAITLIST_POLL_SECONDS must be" in result.stderr
