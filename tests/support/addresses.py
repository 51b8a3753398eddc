"""The shipping and billing addresses the tests fill in."""

from __future__ import annotations

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "line2": "",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}
BILLING = {**ADDRESS, "name": "Charles Babbage", "line1": "1 Dorset Street"}
