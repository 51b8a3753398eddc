"""Inventory HTTP API (API.md "Catalog and stock" and "Reservations").

One view per path; each operation validates with its own nested input serializer,
calls a selector (reads), ``inventory.catalog`` (new products and warehouses) or
``inventory.services`` (every stock change), and answers with the shared output
serializers of ``inventory.serializers``. Errors are raised as ``ApplicationError``s and
rendered as the envelope by ``core.errors``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import query_without_blanks, request_actor
from core.pagination import Pagination
from core.permissions import IsStaff, IsStaffOrReadOnly
from core.schema import error_responses
from inventory import catalog, selectors, services
from inventory.errors import OrderNotFoundForReservation
from inventory.models import Product, ReleaseReason, ReservationStatus, Warehouse
from inventory.serializers import (
    ProductSerializer,
    ReservationSerializer,
    StockAvailabilitySerializer,
    StockLevelSerializer,
    WarehouseSerializer,
)
from inventory.services import ReservationLine

INVENTORY = ["inventory"]
RESERVATIONS = ["reservations"]
DEFAULT_RESERVATION_TTL_SECONDS = 15 * 60
MAX_ON_HAND = 1_000_000_000
MAX_RESERVATION_QUANTITY = 1_000_000
MAX_SKUS_PER_REQUEST = 200


# --- Helpers ------------------------------------------------------------------------


def _paginated(
    view: APIView,
    request: Request,
    queryset: QuerySet,
    serializer_class,
    prepare: Callable[[list], list] | None = None,
) -> Response:
    """``{count, next, previous, results}``; ``prepare`` loads what the serializer needs
    for the rows of the page (in a constant number of queries)."""
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    if prepare is not None:
        page = prepare(page)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class _QueryBooleanField(serializers.BooleanField):
    """A boolean query parameter that is absent (not false) when not given."""

    default_empty_html = serializers.empty


_STAFF_ERRORS = (401, 403)
# Reads open to anyone: credentials are optional (the permission class is not one that
# drf-spectacular recognises as such).
_OPTIONAL_AUTH = [{"tokenAuth": []}, {"cookieAuth": []}, {}]
_PRODUCT_ID = OpenApiParameter(
    "product_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Product id."
)
_RESERVATION_ID = OpenApiParameter(
    "reservation_id", OpenApiTypes.INT64, OpenApiParameter.PATH, description="Reservation id."
)
_RESERVATION_404 = (404, "RESERVATION_NOT_FOUND: no reservation with this id")


# --- Catalog ------------------------------------------------------------------------


_PURCHASE_LIMIT_RANGE = {"min_value": 1, "max_value": 2**31 - 1, "allow_null": True}
_MAX_PER_ORDER_HELP = "Most units of the product in one cart line (>= 1); null: no limit."
_MAX_PER_CUSTOMER_HELP = (
    "Most units one logged-in customer may order or hold within "
    "PURCHASE_LIMIT_WINDOW_SECONDS (>= 1); null: no limit."
)


class ProductsApi(APIView):
    permission_classes = [IsStaffOrReadOnly]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        sku = serializers.CharField(required=False, max_length=64, help_text="Exact sku.")
        search = serializers.CharField(
            required=False,
            max_length=100,
            help_text="Case-insensitive substring of sku or name.",
        )

    class CreateInputSerializer(serializers.Serializer):
        sku = serializers.CharField(max_length=64)
        name = serializers.CharField(max_length=255)
        price = serializers.DecimalField(
            max_digits=12, decimal_places=2, min_value=0, help_text='>= 0, e.g. "12.50"'
        )
        currency = serializers.RegexField(
            r"^[A-Z]{3}$",  # whitespace is trimmed first, so "$" is exact
            default="USD",
            error_messages={"invalid": "Use a three-letter upper-case ISO 4217 code."},
        )
        max_per_order = serializers.IntegerField(
            default=None, help_text=_MAX_PER_ORDER_HELP, **_PURCHASE_LIMIT_RANGE
        )
        max_per_customer = serializers.IntegerField(
            default=None, help_text=_MAX_PER_CUSTOMER_HELP, **_PURCHASE_LIMIT_RANGE
        )

        class Meta:
            ref_name = "ProductCreate"

        def validate_sku(self, value: str) -> str:
            if Product.objects.filter(sku=value).exists():
                raise serializers.ValidationError(catalog.DUPLICATE_SKU)
            return value

    @extend_schema(
        operation_id="products_list",
        tags=INVENTORY,
        summary="List products",
        description=(
            "Anyone. Products ordered by sku. `available` is the sum over all active warehouses "
            "of on_hand - reserved; `stock_status` is derived from it."
        ),
        parameters=[FilterSerializer],
        responses={
            200: ProductSerializer(many=True),
            **error_responses(400, (404, "Invalid page")),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=query_without_blanks(request))
        params.is_valid(raise_exception=True)
        products = selectors.product_list(**params.validated_data)
        return _paginated(
            self, request, products, ProductSerializer, prepare=selectors.with_availability
        )

    @extend_schema(
        operation_id="products_create",
        tags=INVENTORY,
        summary="Create a product (staff)",
        request=CreateInputSerializer,
        responses={
            201: ProductSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR, e.g. details.fields.sku for a duplicate sku"),
                *_STAFF_ERRORS,
            ),
        },
    )
    def post(self, request: Request) -> Response:
        body = self.CreateInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        product = catalog.product_create(**body.validated_data)
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(APIView):
    permission_classes = [IsStaffOrReadOnly]

    class UpdateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=255, required=False)
        price = serializers.DecimalField(
            max_digits=12,
            decimal_places=2,
            min_value=0,
            required=False,
            help_text='>= 0, e.g. "12.50"; carts show the new price, orders keep theirs',
        )
        max_per_order = serializers.IntegerField(
            required=False, help_text=_MAX_PER_ORDER_HELP, **_PURCHASE_LIMIT_RANGE
        )
        max_per_customer = serializers.IntegerField(
            required=False, help_text=_MAX_PER_CUSTOMER_HELP, **_PURCHASE_LIMIT_RANGE
        )

        class Meta:
            ref_name = "ProductUpdate"

    @extend_schema(
        operation_id="products_retrieve",
        tags=INVENTORY,
        summary="Get a product",
        description="Anyone. `available` is summed over all active warehouses.",
        parameters=[_PRODUCT_ID],
        responses={
            200: ProductSerializer,
            **error_responses((404, "PRODUCT_NOT_FOUND: unknown or malformed id")),
        },
    )
    def get(self, request: Request, product_id: str) -> Response:
        product = selectors.product_get(product_id=product_id)
        return Response(ProductSerializer(product).data)

    @extend_schema(
        operation_id="products_update",
        tags=INVENTORY,
        summary="Change a product's name, price or purchase limits (staff)",
        description=(
            "Only the fields given change; null lifts a purchase limit. The sku and "
            "currency cannot change. A new max_per_order applies to cart lines added or "
            "changed and to checkouts started from then on; a new max_per_customer to "
            "holds made from then on."
        ),
        parameters=[_PRODUCT_ID],
        request=UpdateInputSerializer,
        responses={
            200: ProductSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR, e.g. details.fields.max_per_order below 1"),
                *_STAFF_ERRORS,
                (404, "PRODUCT_NOT_FOUND: unknown or malformed id"),
            ),
        },
    )
    def patch(self, request: Request, product_id: str) -> Response:
        body = self.UpdateInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        product = catalog.product_update(
            product=selectors.product_get(product_id=product_id), changes=body.validated_data
        )
        return Response(ProductSerializer(product).data)


class WarehousesApi(APIView):
    permission_classes = [IsStaff]
    pagination_class = Pagination

    class CreateInputSerializer(serializers.Serializer):
        code = serializers.SlugField(max_length=32)
        name = serializers.CharField(max_length=255)
        is_default = serializers.BooleanField(
            default=False, help_text="true makes it the default; the old default loses the flag."
        )
        priority = serializers.IntegerField(
            default=0,
            min_value=-(2**31),
            max_value=2**31 - 1,
            help_text="Allocation order of lines that name no warehouse: lower first.",
        )
        is_active = serializers.BooleanField(
            default=True, help_text="false: the warehouse takes no new allocations."
        )

        class Meta:
            ref_name = "WarehouseCreate"

        def validate_code(self, value: str) -> str:
            if Warehouse.objects.filter(code=value).exists():
                raise serializers.ValidationError(catalog.DUPLICATE_WAREHOUSE)
            return value

    @extend_schema(
        operation_id="warehouses_list",
        tags=INVENTORY,
        summary="List warehouses (staff)",
        responses={
            200: WarehouseSerializer(many=True),
            **error_responses(
                (400, "VALIDATION_ERROR: page or page_size is not a valid number"),
                *_STAFF_ERRORS,
                (404, "Invalid page"),
            ),
        },
    )
    def get(self, request: Request) -> Response:
        return _paginated(self, request, selectors.warehouse_list(), WarehouseSerializer)

    @extend_schema(
        operation_id="warehouses_create",
        tags=INVENTORY,
        summary="Create a warehouse (staff)",
        description="Exactly one warehouse is the default at any time.",
        request=CreateInputSerializer,
        responses={
            201: WarehouseSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR, e.g. details.fields.code for a duplicate code"),
                *_STAFF_ERRORS,
            ),
        },
    )
    def post(self, request: Request) -> Response:
        body = self.CreateInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        warehouse = catalog.warehouse_create(**body.validated_data)
        return Response(WarehouseSerializer(warehouse).data, status=status.HTTP_201_CREATED)


class WarehouseDetailApi(APIView):
    permission_classes = [IsStaff]

    class UpdateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=255, required=False)
        priority = serializers.IntegerField(
            required=False,
            min_value=-(2**31),
            max_value=2**31 - 1,
            help_text="Allocation order of lines that name no warehouse: lower first.",
        )
        is_active = serializers.BooleanField(
            required=False,
            help_text="false: no new allocations from this warehouse; its pending "
            "reservations run their course (extend, confirm, release, expire).",
        )

        class Meta:
            ref_name = "WarehouseUpdate"

    @extend_schema(
        operation_id="warehouses_update",
        tags=INVENTORY,
        summary="Change a warehouse's priority, active flag or name (staff)",
        description="Only the fields given change. Stock numbers are not touched.",
        request=UpdateInputSerializer,
        responses={
            200: WarehouseSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR"),
                *_STAFF_ERRORS,
                (404, "NOT_FOUND (unknown warehouse code)"),
            ),
        },
    )
    def patch(self, request: Request, code: str) -> Response:
        body = self.UpdateInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        warehouse = catalog.warehouse_update(code=code, **body.validated_data)
        return Response(WarehouseSerializer(warehouse).data)


# --- Stock --------------------------------------------------------------------------


class StockApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        sku = serializers.CharField(max_length=64)
        warehouse = serializers.CharField(
            required=False,
            allow_null=True,
            max_length=32,
            help_text="Warehouse code; the default warehouse when omitted.",
        )
        on_hand = serializers.IntegerField(min_value=0, max_value=MAX_ON_HAND)
        reason = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=255,
            help_text="Why (kept in the stock ledger with the change).",
        )

        class Meta:
            ref_name = "StockSet"

    @extend_schema(
        operation_id="inventory_stock_set",
        tags=INVENTORY,
        summary="Set on-hand stock (staff)",
        description=(
            "Sets on_hand of a product in a warehouse (creating the stock row). Lapsed "
            "reservations are reclaimed first; on_hand below what is still reserved is refused."
        ),
        request=InputSerializer,
        responses={
            200: StockLevelSerializer,
            **error_responses(
                400,
                *_STAFF_ERRORS,
                (404, "PRODUCT_NOT_FOUND (unknown sku) or NOT_FOUND (unknown warehouse)"),
                (409, "STOCK_BELOW_RESERVED: on_hand would be below reserved"),
            ),
        },
    )
    def put(self, request: Request) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        product = selectors.products_by_sku(skus=[data["sku"]])[data["sku"]]
        warehouse = selectors.warehouse_get(code=data.get("warehouse"))
        row = services.set_stock(
            product=product,
            warehouse=warehouse,
            on_hand=data["on_hand"],
            actor=request_actor(request),
            reason=data.get("reason", ""),
        )
        return Response(StockLevelSerializer(row).data)


class StockLedgerApi(APIView):
    permission_classes = [IsStaff]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        sku = serializers.CharField(required=False, max_length=64, help_text="Exact sku.")
        warehouse = serializers.CharField(
            required=False, max_length=32, help_text="Warehouse code."
        )

        class Meta:
            ref_name = "StockLedgerFilter"

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        sku = serializers.CharField(source="stock_level.product.sku")
        warehouse = serializers.CharField(source="stock_level.warehouse.code")
        delta = serializers.IntegerField()
        on_hand_after = serializers.IntegerField()
        reason = serializers.CharField()
        actor = serializers.CharField()
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "StockLedgerEntry"

    @extend_schema(
        operation_id="inventory_stock_ledger",
        tags=INVENTORY,
        summary="The stock ledger (staff)",
        description=(
            "Every change of on_hand made by staff or ops (set, adjust, import), newest "
            "first, paginated `{count, next, previous, results}`."
        ),
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer(many=True),
            **error_responses(
                (400, "VALIDATION_ERROR: a filter value is invalid"),
                *_STAFF_ERRORS,
                (404, "NOT_FOUND: invalid page"),
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=query_without_blanks(request))
        params.is_valid(raise_exception=True)
        entries = selectors.stock_ledger(**params.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class AvailabilityApi(APIView):
    permission_classes = [IsStaff]

    class FilterSerializer(serializers.Serializer):
        sku = serializers.ListField(
            child=serializers.CharField(max_length=64),
            min_length=1,
            max_length=MAX_SKUS_PER_REQUEST,
            help_text="Repeat for several: ?sku=A&sku=B",
        )
        warehouse = serializers.CharField(
            required=False,
            max_length=32,
            help_text=(
                "Warehouse code. Without it: one item per warehouse holding stock of the "
                "sku (a sku with no stock anywhere: one item at the default warehouse)."
            ),
        )

    class OutputSerializer(serializers.Serializer):
        items = StockAvailabilitySerializer(many=True)

        class Meta:
            ref_name = "StockAvailabilityList"

    @extend_schema(
        operation_id="inventory_availability",
        tags=INVENTORY,
        summary="Stock availability by sku (staff)",
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR: no sku given, or more than 200"),
                *_STAFF_ERRORS,
                (404, "PRODUCT_NOT_FOUND (details.skus) or NOT_FOUND (unknown warehouse)"),
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=query_without_blanks(request))
        params.is_valid(raise_exception=True)
        items = selectors.stock_availability(
            skus=params.validated_data["sku"],
            warehouse_code=params.validated_data.get("warehouse"),
        )
        return Response(self.OutputSerializer({"items": items}).data)


# --- Reservations -------------------------------------------------------------------


def _default_ttl_seconds() -> int:
    return min(
        max(DEFAULT_RESERVATION_TTL_SECONDS, settings.RESERVATION_MIN_TTL_SECONDS),
        settings.RESERVATION_MAX_TTL_SECONDS,
    )


class ReservationsApi(APIView):
    permission_classes = [IsStaff]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ReservationStatus.choices, required=False)
        cart = serializers.UUIDField(required=False, help_text="Cart id.")
        order = serializers.UUIDField(required=False, help_text="Order id.")
        sku = serializers.CharField(required=False, max_length=64)
        expired = _QueryBooleanField(
            required=False,
            help_text="true: pending reservations whose expiry has passed (not yet swept).",
        )

    class CreateInputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            sku = serializers.CharField(max_length=64)
            quantity = serializers.IntegerField(min_value=1, max_value=MAX_RESERVATION_QUANTITY)
            warehouse = serializers.CharField(
                required=False,
                allow_null=True,
                max_length=32,
                help_text="Warehouse code; the default warehouse when omitted.",
            )

            class Meta:
                ref_name = "ReservationItem"

        items = serializers.ListField(child=ItemSerializer(), min_length=1, max_length=100)
        ttl_minutes = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=30,
            help_text=(
                "1..30, default 15; must also lie within RESERVATION_MIN_TTL_SECONDS and "
                "RESERVATION_MAX_TTL_SECONDS."
            ),
        )

        class Meta:
            ref_name = "ReservationCreate"

        def validate_ttl_minutes(self, value: int) -> int:
            seconds = value * 60
            if seconds < settings.RESERVATION_MIN_TTL_SECONDS:
                minimum = math.ceil(settings.RESERVATION_MIN_TTL_SECONDS / 60)
                raise serializers.ValidationError(f"Ensure this value is at least {minimum}.")
            if seconds > settings.RESERVATION_MAX_TTL_SECONDS:
                maximum = settings.RESERVATION_MAX_TTL_SECONDS // 60
                raise serializers.ValidationError(f"Ensure this value is at most {maximum}.")
            return value

    class CreateOutputSerializer(serializers.Serializer):
        reservations = ReservationSerializer(many=True)
        expires_at = serializers.DateTimeField()

        class Meta:
            ref_name = "ReservationCreateResult"

    @extend_schema(
        operation_id="reservations_list",
        tags=RESERVATIONS,
        summary="List reservations (staff)",
        description="Newest first.",
        parameters=[FilterSerializer],
        responses={
            200: ReservationSerializer(many=True),
            **error_responses(
                (400, "VALIDATION_ERROR: a filter value is invalid"),
                *_STAFF_ERRORS,
                (404, "Invalid page"),
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=query_without_blanks(request))
        params.is_valid(raise_exception=True)
        data = params.validated_data
        reservations = selectors.reservation_list(
            status=data.get("status"),
            cart_id=data.get("cart"),
            order_id=data.get("order"),
            sku=data.get("sku"),
            expired=data.get("expired"),
        )
        return _paginated(self, request, reservations, ReservationSerializer)

    @extend_schema(
        operation_id="reservations_create",
        tags=RESERVATIONS,
        summary="Reserve stock (staff)",
        description=(
            "All or nothing: either every line is reserved or none is. Lines of the same "
            "sku and warehouse are summed into one reservation."
        ),
        request=CreateInputSerializer,
        responses={
            201: CreateOutputSerializer,
            **error_responses(
                (
                    400,
                    "VALIDATION_ERROR, or INSUFFICIENT_STOCK with details.items (every short line)",
                ),
                *_STAFF_ERRORS,
                (404, "PRODUCT_NOT_FOUND (details.skus) or NOT_FOUND (unknown warehouse)"),
            ),
        },
    )
    def post(self, request: Request) -> Response:
        body = self.CreateInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        items = body.validated_data["items"]
        ttl_minutes = body.validated_data.get("ttl_minutes")
        ttl_seconds = ttl_minutes * 60 if ttl_minutes else _default_ttl_seconds()

        products = selectors.products_by_sku(skus=[item["sku"] for item in items])
        warehouses = selectors.warehouses_by_code(codes=[item.get("warehouse") for item in items])
        lines = [
            ReservationLine(
                product_id=products[item["sku"]].id,
                warehouse_id=warehouses[item.get("warehouse")].id,
                quantity=item["quantity"],
            )
            for item in items
        ]
        reservations = services.reserve(
            lines=lines, ttl_seconds=ttl_seconds, actor=request_actor(request)
        )

        product_by_id = {p.id: p for p in products.values()}
        warehouse_by_id = {w.id: w for w in warehouses.values()}
        for reservation in reservations:
            reservation.product = product_by_id[reservation.product_id]
            reservation.warehouse = warehouse_by_id[reservation.warehouse_id]
        result = {"reservations": reservations, "expires_at": reservations[0].expires_at}
        return Response(self.CreateOutputSerializer(result).data, status=status.HTTP_201_CREATED)


class ReservationDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="reservations_retrieve",
        tags=RESERVATIONS,
        summary="Get a reservation (staff)",
        parameters=[_RESERVATION_ID],
        responses={200: ReservationSerializer, **error_responses(*_STAFF_ERRORS, _RESERVATION_404)},
    )
    def get(self, request: Request, reservation_id: str) -> Response:
        reservation = selectors.reservation_get(reservation_id=reservation_id)
        return Response(ReservationSerializer(reservation).data)


class ReservationExtendApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        expires_at = serializers.DateTimeField(
            help_text="ISO-8601; within (now, now + RESERVATION_MAX_TTL_SECONDS]."
        )

        class Meta:
            ref_name = "ReservationExtend"

    @extend_schema(
        operation_id="reservations_extend",
        tags=RESERVATIONS,
        summary="Extend a reservation (staff)",
        description=(
            "Moves the expiry of a pending, unexpired reservation; at most "
            "CHECKOUT_MAX_EXTENSIONS times."
        ),
        parameters=[_RESERVATION_ID],
        request=InputSerializer,
        responses={
            200: ReservationSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR: expires_at missing or out of bounds"),
                *_STAFF_ERRORS,
                _RESERVATION_404,
                (
                    409,
                    "RESERVATION_NOT_ACTIVE (not pending, or lapsed) or EXTENSION_LIMIT_REACHED",
                ),
            ),
        },
    )
    def put(self, request: Request, reservation_id: str) -> Response:
        reservation = selectors.reservation_get(reservation_id=reservation_id)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        [extended] = services.extend(
            reservation_ids=[reservation.id],
            expires_at=body.validated_data["expires_at"],
            actor=request_actor(request),
            max_extensions=settings.CHECKOUT_MAX_EXTENSIONS,
        )
        return Response(ReservationSerializer(extended).data)


class ReservationConfirmApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        order_id = serializers.UUIDField()

        class Meta:
            ref_name = "ReservationConfirm"

    @extend_schema(
        operation_id="reservations_confirm",
        tags=RESERVATIONS,
        summary="Confirm a reservation into an order (staff)",
        description=(
            "Deducts the quantity from on_hand and reserved. Repeating it with the same "
            "order is a no-op."
        ),
        parameters=[_RESERVATION_ID],
        request=InputSerializer,
        responses={
            200: ReservationSerializer,
            **error_responses(
                400,
                *_STAFF_ERRORS,
                (404, "RESERVATION_NOT_FOUND or ORDER_NOT_FOUND"),
                (
                    409,
                    "RESERVATION_NOT_ACTIVE: released, expired, or confirmed for another order",
                ),
            ),
        },
    )
    def post(self, request: Request, reservation_id: str) -> Response:
        reservation = selectors.reservation_get(reservation_id=reservation_id)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order_id = body.validated_data["order_id"]
        if not selectors.order_exists(order_id=order_id):
            raise OrderNotFoundForReservation(details={"order_id": str(order_id)})
        [confirmed] = services.confirm(
            reservation_ids=[reservation.id], order_id=order_id, actor=request_actor(request)
        )
        return Response(ReservationSerializer(confirmed).data)


_REASONS = ", ".join(ReleaseReason.values)


class ReservationReleaseApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            required=False,
            allow_null=True,
            allow_blank=True,
            trim_whitespace=False,
            max_length=255,
            help_text=(
                "Why it is released: free text of at most 255 characters, kept as given, or "
                f'one of the internal codes ({_REASONS}); "api" when omitted or blank.'
            ),
        )

        class Meta:
            ref_name = "ReservationRelease"

    @extend_schema(
        operation_id="reservations_release",
        tags=RESERVATIONS,
        summary="Release a reservation (staff)",
        description=(
            "Gives a pending reservation's quantity back. Releasing a released or expired "
            "reservation is a no-op."
        ),
        parameters=[_RESERVATION_ID],
        request=InputSerializer,
        responses={
            200: ReservationSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR: the reason is longer than 255 characters"),
                *_STAFF_ERRORS,
                _RESERVATION_404,
                (409, "RESERVATION_NOT_ACTIVE: the reservation is confirmed"),
            ),
        },
    )
    def post(self, request: Request, reservation_id: str) -> Response:
        reservation = selectors.reservation_get(reservation_id=reservation_id)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason: str = body.validated_data.get("reason") or ""
        if not reason.strip():
            reason = ReleaseReason.API
        [released] = services.release(
            reservation_ids=[reservation.id], reason=reason, actor=request_actor(request)
        )
        return Response(ReservationSerializer(released).data)
