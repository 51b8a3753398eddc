// Order confirmation: the order as the API returns it, read with the token of the cart
// it was placed from.

import { api, loadCart, orderLookupToken, orderToken } from "./api.js";
import { describeError } from "./messages.js";
import { el, money, showAlert, updateCartCount } from "./ui.js";

const orderId = document.querySelector("[data-order-config]").dataset.orderId;
const loading = document.querySelector("[data-loading]");
const notice = document.querySelector("[data-notice]");
const article = document.querySelector("[data-order]");

const PAYMENT_WORDS = {
  card: "Card",
  test_decline: "Test card (declined)",
  test_capture_fail: "Test card (capture fails)",
  test_timeout: "Test card (times out)",
};

const STATUS_WORDS = {
  pending: "We have received it and will confirm it shortly.",
  confirmed: "It is confirmed.",
  processing: "We are preparing it.",
  shipped: "It is on its way.",
  delivered: "It has been delivered.",
  cancelled: "It has been cancelled.",
};

let regionNames = null;
try {
  regionNames = new Intl.DisplayNames(["en"], { type: "region" });
} catch {
  regionNames = null;
}

function countryName(code) {
  if (!code || !regionNames) return code;
  try {
    return regionNames.of(code) || code;
  } catch {
    return code;
  }
}

function addressLines(address) {
  if (!address) return ["—"];
  return [
    address.name,
    address.line1,
    address.line2,
    `${address.postal_code || ""} ${address.city || ""}`.trim(),
    countryName(address.country),
  ].filter(Boolean);
}

function fillAddress(target, address) {
  const lines = addressLines(address);
  target.replaceChildren(...lines.flatMap((line, index) => (index ? [el("br"), line] : [line])));
}

async function productNames(items, token) {
  const missing = items.filter((item) => !item.name);
  const found = await Promise.all(
    missing.map((item) =>
      api(`products/${item.product_id}/`, { token })
        .then((product) => [item.product_id, product.name])
        .catch(() => [item.product_id, item.sku]),
    ),
  );
  return Object.fromEntries(found);
}

async function show() {
  const token = orderToken(orderId);
  // An order found by number and email (the order lookup page) is read with its token.
  const lookupToken = token ? null : orderLookupToken(orderId);
  let order;
  try {
    order = await api(`orders/${orderId}/`, {
      token,
      headers: lookupToken ? { "X-Order-Token": lookupToken } : {},
    });
  } catch (error) {
    loading.hidden = true;
    showAlert(notice, describeError(error), {
      actions: [el("a", { href: "/", class: "button-link" }, "Continue shopping")],
    });
    return;
  }
  const names = await productNames(order.items, token);
  document.querySelector("[data-title]").textContent = lookupToken
    ? `Order ${order.number}`
    : "Thank you for your order";
  document.querySelector("[data-number]").textContent = order.number;
  document.querySelector("[data-status-text]").textContent = STATUS_WORDS[order.status] || "";
  article.dataset.status = order.status;
  document.querySelector("[data-lines]").replaceChildren(
    ...order.items.map((item) =>
      el(
        "tr",
        { dataset: { sku: item.sku } },
        el("th", { scope: "row" }, el("span", { class: "line-name" }, item.name || names[item.product_id]), el("span", { class: "sku" }, item.sku)),
        el("td", { "data-label": "Price" }, money(item.unit_price, order.currency)),
        el("td", { "data-label": "Quantity" }, String(item.quantity)),
        el("td", { "data-label": "Total" }, money(item.line_total, order.currency)),
      ),
    ),
  );
  document.querySelector("[data-subtotal]").textContent = money(order.subtotal, order.currency);
  document.querySelector("[data-total]").textContent = money(order.total, order.currency);
  fillAddress(document.querySelector("[data-shipping]"), order.shipping_address);
  fillAddress(document.querySelector("[data-billing]"), order.billing_address || order.shipping_address);
  const payment = order.payment || {};
  document.querySelector("[data-payment]").textContent =
    `${PAYMENT_WORDS[order.payment_method] || order.payment_method}` + (payment.status ? ` — payment ${payment.status}` : "");
  loading.hidden = true;
  article.hidden = false;
}

show();
loadCart()
  .then(updateCartCount)
  .catch(() => {});
