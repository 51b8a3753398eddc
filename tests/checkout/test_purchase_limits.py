"""Purchase limits (SPEC §15): a product's ``max_per_order`` refuses a cart line above it
(400 ``QUANTITY_LIMIT_EXCEEDED``), and its ``max_per_customer`` refuses a logged-in
customer whose orders in the window, holds in other carts and this line go above it
(409 ``PURCHASE_LIMIT_REACHED``), checked under the stock row locks of the hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from carts.models import Cart, CartStatus
from checkout.confirm import confirm_checkout
from checkout.errors import PurchaseLimitReached
from checkout.services import start_checkout, update_checkout
from inventory import services as inventory
from inventory import waitlist
from inventory.models import Product, ReleaseReason, Reservation, ReservationStatus, StockLevel
from orders.models import Order
from orders.services import cancel_order
from tests.support import (
    ADDRESS,
    API,
    Shopper,
    assert_counters_exact,
    assert_error,
    cart_in_checkout,
    confirm,
    ensure_default_warehouse,
    metric,
    run_concurrently,
    stocked,
)
from tests.support.factories import (
    CartFactory,
    CartItemFactory,
    UserFactory,
    WarehouseFactory,
)

pytestmark = pytest.mark.django_db


def limited(sku: str, *, on_hand: int = 50, **limits: int) -> StockLevel:
    return stocked(sku=sku, on_hand=on_hand, **limits)


def customer_client(customer) -> APIClient:
    client = APIClient()
    client.force_authenticate(customer)
    return client


def ordered(customer, stock: StockLevel, quantity: int) -> Order:
    """An order of the customer, paid through the real confirm."""
    cart = cart_in_checkout((stock, quantity), customer=customer)
    result = confirm_checkout(
        cart_id=cart.id, idempotency_key=f"k-{cart.id}", fingerprint="f" * 64, actor="test"
    )
    assert result.order is not None
    return result.order


def customer_cart(customer, *lines: tuple[StockLevel, int], pinned: bool = False) -> Cart:
    cart = CartFactory(customer=customer, shipping_address=ADDRESS, payment_method="card")
    for stock, quantity in lines:
        CartItemFactory(
            cart=cart,
            product=stock.product,
            warehouse=stock.warehouse if pinned else None,
            quantity=quantity,
        )
    return cart


# --- max_per_order ------------------------------------------------------------------------


def test_a_line_above_max_per_order_is_refused_when_added():
    limited("ONE-EACH", max_per_order=2)
    shopper = Shopper()
    shopper.create_cart()
    before = metric("purchase_limit_refusals_total", kind="per_order")

    response = shopper.add("ONE-EACH", 3)

    error = assert_error(response, 400, "QUANTITY_LIMIT_EXCEEDED")
    assert error["details"] == {"sku": "ONE-EACH", "limit": 2}
    assert shopper.cart().json()["items"] == []
    assert metric("purchase_limit_refusals_total", kind="per_order") == before + 1


def test_adding_to_a_line_may_reach_max_per_order_but_not_pass_it():
    limited("TWO-MAX", max_per_order=2)
    shopper = Shopper()
    shopper.create_cart()
    assert shopper.add("TWO-MAX", 1).status_code == 201
    assert shopper.add("TWO-MAX", 1).status_code == 201

    response = shopper.add("TWO-MAX", 1)

    assert assert_error(response, 400, "QUANTITY_LIMIT_EXCEEDED")["details"] == {
        "sku": "TWO-MAX",
        "limit": 2,
    }
    assert [item["quantity"] for item in shopper.cart().json()["items"]] == [2]


def test_changing_a_line_above_max_per_order_is_refused():
    limited("CAPPED", max_per_order=3)
    shopper = Shopper()
    cart = shopper.cart_with(("CAPPED", 1))
    item_id = cart["items"][0]["id"]

    refused = shopper.set_quantity(item_id, 4)
    allowed = shopper.set_quantity(item_id, 3)

    assert assert_error(refused, 400, "QUANTITY_LIMIT_EXCEEDED")["details"] == {
        "sku": "CAPPED",
        "limit": 3,
    }
    assert allowed.status_code == 200
    assert allowed.json()["items"][0]["quantity"] == 3


def test_a_product_without_limits_takes_any_line_up_to_1000():
    limited("FREE", on_hand=2000)
    shopper = Shopper()
    shopper.create_cart()

    assert shopper.add("FREE", 1000).status_code == 201


def test_a_max_per_order_set_after_the_line_was_added_refuses_the_start():
    stock = limited("LATE-LIMIT")
    shopper = Shopper()
    shopper.cart_with(("LATE-LIMIT", 5))
    Product.objects.filter(id=stock.product_id).update(max_per_order=4)

    response = shopper.start()

    assert assert_error(response, 400, "QUANTITY_LIMIT_EXCEEDED")["details"] == {
        "sku": "LATE-LIMIT",
        "limit": 4,
    }
    assert Cart.objects.get(id=shopper.cart_id).status == CartStatus.ACTIVE
    assert not Reservation.objects.exists()


# --- max_per_customer ---------------------------------------------------------------------


def test_a_customer_over_max_per_customer_with_an_earlier_order_is_refused_at_start():
    customer = UserFactory()
    stock = limited("PER-HEAD", max_per_customer=3)
    ordered(customer, stock, 2)
    client = customer_client(customer)
    shopper = Shopper(client)
    shopper.cart_with(("PER-HEAD", 2))
    before = metric("purchase_limit_refusals_total", kind="per_customer")

    response = shopper.start(token="")

    error = assert_error(response, 409, "PURCHASE_LIMIT_REACHED")
    assert error["details"] == {"sku": "PER-HEAD", "limit": 3, "already": 2}
    assert metric("purchase_limit_refusals_total", kind="per_customer") == before + 1
    assert Cart.objects.get(id=shopper.cart_id).status == CartStatus.ACTIVE
    assert not Reservation.objects.filter(
        cart_id=shopper.cart_id, status=ReservationStatus.PENDING
    ).exists()
    assert_counters_exact()


def test_a_customer_may_take_exactly_what_is_left_of_the_limit():
    customer = UserFactory()
    stock = limited("EXACT", max_per_customer=3)
    ordered(customer, stock, 2)
    cart = customer_cart(customer, (stock, 1))

    cart, started = start_checkout(cart_id=cart.id, actor="test")

    assert started and cart.status == CartStatus.CHECKOUT


def test_cancelled_orders_and_orders_before_the_window_do_not_count(settings):
    settings.PURCHASE_LIMIT_WINDOW_SECONDS = 3600
    customer = UserFactory()
    stock = limited("WINDOW", max_per_customer=2)
    with time_machine.travel(timezone.now() - timedelta(hours=2), tick=False):
        ordered(customer, stock, 2)  # outside the window by now
    cancelled = ordered(customer, stock, 2)
    cancel_order(order_id=cancelled.id, actor="test", by_staff=True)
    cart = customer_cart(customer, (stock, 2))

    _, started = start_checkout(cart_id=cart.id, actor="test")

    assert started


def test_holds_in_another_cart_of_the_customer_count():
    customer = UserFactory()
    stock = limited("TWO-TABS", max_per_customer=3)
    first = customer_cart(customer, (stock, 2))
    start_checkout(cart_id=first.id, actor="tab-1")
    second = customer_cart(customer, (stock, 2))

    with pytest.raises(PurchaseLimitReached) as refused:
        start_checkout(cart_id=second.id, actor="tab-2")

    assert refused.value.details == {"sku": "TWO-TABS", "limit": 3, "already": 2}
    assert Cart.objects.get(id=second.id).status == CartStatus.ACTIVE


def test_another_customers_orders_and_holds_do_not_count():
    stock = limited("MINE", max_per_customer=2)
    ordered(UserFactory(), stock, 2)
    start_checkout(cart_id=customer_cart(UserFactory(), (stock, 2)).id, actor="other")
    cart = customer_cart(UserFactory(), (stock, 2))

    _, started = start_checkout(cart_id=cart.id, actor="test")

    assert started


def test_an_anonymous_cart_has_no_per_customer_limit():
    limited("ANON", max_per_customer=1)
    first, second = Shopper(), Shopper()
    first.cart_with(("ANON", 2))
    second.cart_with(("ANON", 2))

    assert first.start().status_code == 201
    assert second.start().status_code == 201


def test_a_line_held_again_at_an_extension_is_checked_against_the_limit(settings):
    settings.CHECKOUT_EXTENSION_THRESHOLD_SECONDS = 1000  # every update extends
    customer = UserFactory()
    stock = limited("AGAIN", max_per_customer=2)
    first = customer_cart(customer, (stock, 2))
    start_checkout(cart_id=first.id, actor="tab-1")
    # Staff free the first tab's hold; the second tab then takes the whole limit.
    held = Reservation.objects.filter(cart_id=first.id).values_list("id", flat=True)
    inventory.release(reservation_ids=list(held), reason=ReleaseReason.STAFF, actor="staff")
    second = customer_cart(customer, (stock, 2))
    start_checkout(cart_id=second.id, actor="tab-2")

    with pytest.raises(PurchaseLimitReached) as refused:
        update_checkout(cart_id=first.id, changes={"current_step": 2}, actor="tab-1")

    assert refused.value.details == {"sku": "AGAIN", "limit": 2, "already": 2}
    assert not Reservation.objects.filter(
        cart_id=first.id, status=ReservationStatus.PENDING
    ).exists()


def test_confirm_checks_the_limit_when_it_reserves_with_pre_reservation_off(settings):
    settings.ENABLE_PRE_RESERVATION = False
    customer = UserFactory()
    stock = limited("LATE-TAB", max_per_customer=2)
    first = customer_cart(customer, (stock, 2))
    second = customer_cart(customer, (stock, 2))
    start_checkout(cart_id=first.id, actor="tab-1")
    start_checkout(cart_id=second.id, actor="tab-2")  # nothing held yet: both may start
    client = customer_client(customer)
    assert confirm(client, first, token=None).status_code == 201

    response = confirm(client, second, token=None)

    error = assert_error(response, 409, "PURCHASE_LIMIT_REACHED")
    assert error["details"] == {"sku": "LATE-TAB", "limit": 2, "already": 2}
    assert Order.objects.filter(customer=customer).count() == 1
    assert Cart.objects.get(id=second.id).status == CartStatus.CHECKOUT
    assert_counters_exact()


def test_with_pre_reservation_off_start_refuses_a_customer_already_over_the_limit(settings):
    settings.ENABLE_PRE_RESERVATION = False
    customer = UserFactory()
    stock = limited("EARLY", max_per_customer=2)
    ordered(customer, stock, 2)
    cart = customer_cart(customer, (stock, 1))

    with pytest.raises(PurchaseLimitReached):
        start_checkout(cart_id=cart.id, actor="test")


def test_a_waitlist_offer_held_for_a_customers_cart_is_checked_when_checkout_starts():
    customer = UserFactory()
    stock = limited("OFFERED", on_hand=3, max_per_customer=2)
    # The customer's second tab holds one; someone else holds the other two, and the
    # customer's first tab waits for two.
    other = customer_cart(customer, (stock, 1))
    start_checkout(cart_id=other.id, actor="tab-2")
    holder = cart_in_checkout((stock, 2))
    waiting = CartFactory(customer=customer)
    waitlist.join(
        cart_id=waiting.id, product=stock.product, warehouse=None, quantity=2, actor="tab-1"
    )
    # The holder gives up: its two units are offered to the first tab.
    inventory.release(
        reservation_ids=list(
            Reservation.objects.filter(cart_id=holder.id).values_list("id", flat=True)
        ),
        reason=ReleaseReason.CHECKOUT_CANCELLED,
        actor="holder",
    )
    offer = Reservation.objects.get(cart_id=waiting.id, status=ReservationStatus.PENDING)
    assert offer.quantity == 2 and offer.waitlist_entry_id is not None

    with pytest.raises(PurchaseLimitReached) as refused:
        start_checkout(cart_id=waiting.id, actor="tab-1")

    assert refused.value.details == {"sku": "OFFERED", "limit": 2, "already": 1}
    offer.refresh_from_db()
    assert offer.status == ReservationStatus.PENDING  # the offer is still the cart's


def test_a_limit_refusal_is_not_counted_as_a_reservation_error():
    customer = UserFactory()
    stock = limited("NOT-AN-ERROR", max_per_customer=1)
    ordered(customer, stock, 1)
    cart = customer_cart(customer, (stock, 1))
    errors = metric("stock_reservations_total", outcome="error")

    with pytest.raises(PurchaseLimitReached):
        start_checkout(cart_id=cart.id, actor="test")

    assert metric("stock_reservations_total", outcome="error") == errors


# --- a limit staff set with the API ---------------------------------------------------------


def test_staff_set_a_limit_with_the_api_and_the_cart_obeys_it(staff_client):
    limited("SET-BY-STAFF")
    product = Product.objects.get(sku="SET-BY-STAFF")
    patched = staff_client.patch(
        f"{API}/products/{product.id}/", {"max_per_order": 1}, format="json"
    )
    assert patched.status_code == 200, patched.content
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.add("SET-BY-STAFF", 2)

    assert assert_error(response, 400, "QUANTITY_LIMIT_EXCEEDED")["details"] == {
        "sku": "SET-BY-STAFF",
        "limit": 1,
    }


# --- real threads: two tabs of one customer -----------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tabs", [2, 4])
def test_tabs_of_one_customer_racing_to_start_cannot_pass_the_limit_together(tabs):
    ensure_default_warehouse()
    customer = UserFactory()
    stock = limited("RACE-LIMIT", on_hand=100, max_per_customer=2)
    carts = [customer_cart(customer, (stock, 2)) for _ in range(tabs)]

    outcomes = run_concurrently(
        tabs, lambda i: start_checkout(cart_id=carts[i].id, actor=f"tab-{i}")
    )

    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(o, PurchaseLimitReached) for o in refused), refused
    assert len(refused) == tabs - 1
    assert all(o.details == {"sku": "RACE-LIMIT", "limit": 2, "already": 2} for o in refused)
    held = Reservation.objects.filter(product=stock.product, status=ReservationStatus.PENDING)
    assert sum(r.quantity for r in held) == 2
    assert_counters_exact()


ROUNDS = 5  # races of the pinned tabs, each with a customer of its own


@pytest.mark.django_db(transaction=True)
def test_tabs_pinned_to_different_warehouses_still_take_turns_on_the_limit():
    ensure_default_warehouse()
    north = WarehouseFactory(code="lim-north", priority=1)
    south = WarehouseFactory(code="lim-south", priority=2)
    home = limited("SPLIT-LIMIT", on_hand=100, max_per_customer=3)
    product = home.product
    rows = [
        home,
        StockLevel.objects.create(product=product, warehouse=north, on_hand=100),
        StockLevel.objects.create(product=product, warehouse=south, on_hand=100),
    ]
    for _ in range(ROUNDS):
        customer = UserFactory()
        # Each tab's line is pinned to another warehouse: their pinned rows differ, so
        # only the limit's serialization over every row of the product lines them up.
        carts = [customer_cart(customer, (row, 2), pinned=True) for row in rows]

        outcomes = run_concurrently(
            len(carts), lambda i, carts=carts: start_checkout(cart_id=carts[i].id, actor="tab")
        )

        refused = [o for o in outcomes if isinstance(o, Exception)]
        assert all(isinstance(o, PurchaseLimitReached) for o in refused), refused
        assert len(refused) == 2
        held = Reservation.objects.filter(cart__customer=customer, status=ReservationStatus.PENDING)
        assert [r.quantity for r in held] == [2]
    assert_counters_exact()
