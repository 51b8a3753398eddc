// Cart page: stock status per line, validate-stock before checkout, checkout button
// disabled while any line cannot be ordered.

import { cartApi, loadCart } from "./api.js";
import { describeError, holdReleasedText, releaseHoldQuestion } from "./messages.js";
import {
  announce,
  clearAlert,
  el,
  hidden,
  money,
  setBusy,
  shortageText,
  showAlert,
  stockBadge,
  updateCartCount,
} from "./ui.js";

const loading = document.querySelector("[data-loading]");
const notice = document.querySelector("[data-notice]");
const emptyBox = document.querySelector("[data-empty]");
const section = document.querySelector("[data-cart]");
const stockNotice = document.querySelector("[data-stock-notice]");
const lines = document.querySelector("[data-lines]");
const subtotal = document.querySelector("[data-subtotal]");
const blocked = document.querySelector("[data-blocked]");
const checkoutButton = document.querySelector("[data-checkout]");
const heading = document.querySelector("main h1");

let cart = null;
let validation = null;

function isShort(check) {
  return check && (check.status === "out_of_stock" || check.status === "insufficient");
}

function lineStatus(check) {
  if (!check) return null;
  if (check.status === "insufficient" && check.available <= 0) return "out_of_stock";
  return check.status;
}

function row(item, check, editable) {
  const quantityId = `quantity-${item.id}`;
  const quantityForm = el(
    "form",
    { class: "quantity-form" },
    el("label", { for: quantityId, class: "visually-hidden" }, `Quantity of ${item.name}`),
    el("input", {
      id: quantityId,
      name: "quantity",
      type: "number",
      inputmode: "numeric",
      min: 1,
      max: 1000,
      value: item.quantity,
      required: true,
      disabled: !editable,
    }),
    el(
      "button",
      { type: "submit", class: "secondary small", disabled: !editable },
      "Update",
      hidden(` quantity of ${item.name}`),
    ),
  );
  quantityForm.addEventListener("submit", (event) => onQuantity(event, item));
  const status = lineStatus(check);
  return el(
    "tr",
    {
      dataset: { itemId: item.id, sku: item.sku, stockStatus: status || "unknown" },
      class: isShort(check) ? "line-problem" : null,
    },
    el("th", { scope: "row" }, el("span", { class: "line-name" }, item.name), el("span", { class: "sku" }, item.sku)),
    el("td", { "data-label": "Price" }, money(item.unit_price, cart.currency)),
    el("td", { "data-label": "Quantity" }, quantityForm),
    el(
      "td",
      { "data-label": "Stock" },
      status ? stockBadge(status, check.available, check.requested) : "Unknown",
    ),
    el("td", { "data-label": "Total", class: "line-total" }, money(item.line_total, cart.currency)),
    el(
      "td",
      {},
      el(
        "button",
        { type: "button", class: "link-button", onclick: () => onRemove(item) },
        "Remove",
        hidden(` ${item.name}`),
      ),
    ),
  );
}

function render() {
  updateCartCount(cart);
  loading.hidden = true;
  if (!cart || cart.items.length === 0) {
    section.hidden = true;
    emptyBox.hidden = false;
    return;
  }
  emptyBox.hidden = true;
  section.hidden = false;
  const checks = new Map(((validation && validation.items) || []).map((c) => [String(c.item_id), c]));
  const editable = cart.status === "active" || cart.status === "abandoned";
  lines.replaceChildren(...cart.items.map((item) => row(item, checks.get(String(item.id)), editable)));
  subtotal.textContent = money(cart.subtotal, cart.currency);

  const problems = cart.items
    .map((item) => [item, checks.get(String(item.id))])
    .filter(([, check]) => isShort(check));
  if (problems.length) {
    showAlert(
      stockNotice,
      {
        title: problems.length === 1 ? "One item cannot be ordered as it is" : "Some items cannot be ordered as they are",
        lines: problems.map(([item, check]) => shortageText(item.name, check.available, check.requested)),
      },
      { kind: "warning", focus: false },
    );
  } else if (validation) {
    clearAlert(stockNotice);
  }

  if (cart.status === "checkout") {
    showAlert(
      notice,
      {
        title: "Your checkout is in progress",
        text: "Your items are being held for you. Continue to checkout, or go back to change your cart (this releases the held items).",
      },
      {
        kind: "info",
        focus: false,
        actions: [
          el("a", { href: "/checkout/", class: "button-link" }, "Continue checkout"),
          el("button", { type: "button", class: "secondary", onclick: onCancelCheckout }, "Change my cart"),
        ],
      },
    );
    checkoutButton.textContent = "Continue checkout";
  } else {
    checkoutButton.textContent = "Go to checkout";
  }
  const canCheckout = Boolean(validation && validation.ok) && problems.length === 0;
  checkoutButton.disabled = !canCheckout;
  blocked.hidden = canCheckout || !validation;
}

async function validate() {
  try {
    validation = await cartApi("validate-stock/");
  } catch (error) {
    validation = null;
    showAlert(stockNotice, describeError(error), {
      focus: false,
      actions: [el("button", { type: "button", onclick: refresh }, "Check stock again")],
    });
  }
}

async function refresh() {
  try {
    cart = await loadCart();
  } catch (error) {
    loading.hidden = true;
    showAlert(notice, describeError(error), {
      actions: [el("button", { type: "button", onclick: () => window.location.reload() }, "Try again")],
    });
    return;
  }
  if (cart && cart.items.length) await validate();
  render();
}

async function afterChange(updated, message) {
  cart = updated;
  if (cart.items.length) await validate();
  render();
  announce(message);
}

async function onQuantity(event, item) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button");
  const quantity = Number(form.elements.quantity.value);
  setBusy(button, true);
  try {
    const updated = await cartApi(`items/${item.id}/`, { method: "PATCH", body: { quantity } });
    clearAlert(notice);
    await afterChange(updated, `${item.name}: quantity changed to ${quantity}.`);
    const input = document.getElementById(`quantity-${item.id}`);
    if (input) input.focus();
  } catch (error) {
    setBusy(button, false);
    showAlert(notice, describeError(error, { names: { [item.sku]: item.name } }));
  }
}

async function onRemove(item) {
  // During checkout the line's items are held: say what removing it gives up, first.
  const held = cart.status === "checkout";
  if (held && !window.confirm(releaseHoldQuestion(item.name, item.quantity))) return;
  try {
    const updated = await cartApi(`items/${item.id}/`, { method: "DELETE" });
    clearAlert(notice);
    if (held) {
      const released = holdReleasedText(item.name, item.quantity);
      await afterChange(updated, released);
      showAlert(notice, { code: "HOLD_RELEASED", title: released }, { kind: "success", focus: false });
    } else {
      await afterChange(updated, `Removed ${item.name} from your cart.`);
    }
    (cart.items.length ? heading : emptyBox.querySelector("a")).focus();
  } catch (error) {
    showAlert(notice, describeError(error));
  }
}

async function onCancelCheckout(event) {
  const button = event.currentTarget;
  setBusy(button, true);
  try {
    const updated = await cartApi("checkout/", { method: "DELETE" });
    clearAlert(notice);
    await afterChange(updated, "Checkout cancelled. You can change your cart now.");
    heading.focus();
  } catch (error) {
    setBusy(button, false);
    showAlert(notice, describeError(error));
  }
}

checkoutButton.addEventListener("click", async () => {
  setBusy(checkoutButton, true, "Checking stock…");
  await validate();
  setBusy(checkoutButton, false);
  render();
  if (!checkoutButton.disabled) {
    window.location.assign("/checkout/");
  } else if (!stockNotice.hidden) {
    stockNotice.firstElementChild.focus();
  }
});

heading.setAttribute("tabindex", "-1");
refresh();
