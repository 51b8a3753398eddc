// Cart page: stock status per line, validate-stock before checkout, checkout button
// disabled while any line cannot be ordered. Waitlists (SPEC §15): a line offered to the
// shopper is shown held, with its countdown and a way to check out; the products the
// shopper waits for are listed with the place in line, read again every
// STOREFRONT_WAITLIST_POLL_SECONDS while the page is visible, so an offer shows up here
// as soon as it is made.

import { api, cartApi, leaveWaitlist, loadCart, loadWaitlist } from "./api.js";
import { describeError, giveUpTurnQuestion, holdReleasedText, releaseHoldQuestion } from "./messages.js";
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
import { OPEN_STATUSES, formatLeft, secondsUntil, showLeft } from "./waitlist.js";

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
const config = document.querySelector("[data-cart-config]").dataset;
const WAITLIST_POLL_MS = Math.max(1, Number(config.waitlistPollSeconds) || 10) * 1000;
const offerNotice = document.querySelector("[data-offer-notice]");
const waitlists = document.querySelector("[data-waitlists]");
const waitlistEntries = document.querySelector("[data-waitlist-entries]");
const checkoutWarning = document.querySelector("[data-waitlist-checkout-warning]");

let cart = null;
let validation = null;
let entries = []; // the cart's waitlist entries, newest first
const productNames = new Map(); // sku → name, for products the shopper waits for
let offerSignature = "";
let waitlistSignature = "";
let pollingWaitlist = false;
let nextWaitlistPoll = 0;

// --- waitlists -------------------------------------------------------------------------

/** The newest entry of `sku` (a cart has one open entry per product at most). */
function latestEntry(sku) {
  return entries.find((entry) => entry.sku === sku) || null;
}

function offerFor(item) {
  const entry = latestEntry(item.sku);
  return entry && entry.status === "offered" ? entry : null;
}

function nameOf(sku) {
  const item = cart && cart.items.find((line) => line.sku === sku);
  return item ? item.name : productNames.get(sku) || sku;
}

function offerCountdown(expiresAt) {
  const node = el("span", {
    class: "countdown",
    role: "timer",
    "aria-atomic": "true",
    dataset: { offerCountdown: "", expiresAt },
  });
  showLeft(node, secondsUntil(expiresAt));
  return node;
}

function tickOffers() {
  for (const node of document.querySelectorAll("[data-offer-countdown]")) {
    const seconds = secondsUntil(node.dataset.expiresAt);
    if (node.textContent !== formatLeft(seconds)) showLeft(node, seconds);
    if (seconds === 0) pollWaitlist(); // lapsed: learn where the turn went
  }
}

function renderOffers() {
  const editable = cart && (cart.status === "active" || cart.status === "abandoned");
  const offered = editable ? cart.items.filter(offerFor) : [];
  const signature = offered.map((item) => `${offerFor(item).id}:${offerFor(item).offer_expires_at}`).join("|");
  if (signature === offerSignature) return;
  offerSignature = signature;
  if (!offered.length) {
    clearAlert(offerNotice);
    return;
  }
  // Not a live region: the countdown would be read out every second. Its arrival is
  // announced once (pollWaitlist).
  const soonest = offered.map((item) => offerFor(item).offer_expires_at).sort()[0];
  const what = offered.map((item) => `${offerFor(item).quantity} × ${item.name}`).join(", ");
  offerNotice.replaceChildren(
    el(
      "div",
      { class: "alert alert-success", tabindex: "-1", dataset: { offer: "" } },
      el("h2", { class: "alert-title" }, "It is your turn"),
      el(
        "p",
        {},
        `${what} ${offered.length === 1 ? "is" : "are"} in your cart, held for you for `,
        offerCountdown(soonest),
        ".",
      ),
      el("p", {}, "Check out before the time runs out, or your turn passes to the next shopper in line."),
      el(
        "div",
        { class: "alert-actions" },
        el("button", { type: "button", class: "primary", onclick: goToCheckout }, "Check out now"),
      ),
    ),
  );
  offerNotice.hidden = false;
}

function renderWaitlists() {
  const waiting = entries.filter((entry) => entry.status === "waiting");
  waitlists.hidden = waiting.length === 0;
  // A cart in checkout cannot take an offer: a turn that comes meanwhile passes on.
  checkoutWarning.hidden = !(cart && cart.status === "checkout");
  const signature = waiting.map((entry) => `${entry.id}:${entry.position}:${entry.quantity}:${nameOf(entry.sku)}`).join("|");
  // A live region: rewritten only when a place in line changes, so each change is heard once.
  if (signature === waitlistSignature) return;
  waitlistSignature = signature;
  waitlistEntries.replaceChildren(
    ...waiting.map((entry) => {
      const name = nameOf(entry.sku);
      return el(
        "li",
        { dataset: { entryId: entry.id, sku: entry.sku } },
        el("a", { href: `/products/${encodeURIComponent(entry.sku)}/` }, name),
        ` × ${entry.quantity}: `,
        el("strong", { class: "waitlist-place" }, `number ${entry.position} in line`),
        " ",
        el(
          "button",
          { type: "button", class: "link-button", onclick: (event) => onLeave(entry, event.currentTarget) },
          "Leave",
          hidden(` the waitlist for ${name}`),
        ),
      );
    }),
  );
}

/** Names of the products waited for that are not in the cart (one read each, once). */
async function loadNames() {
  const missing = [...new Set(entries.filter((e) => OPEN_STATUSES.has(e.status)).map((e) => e.sku))].filter(
    (sku) => !productNames.has(sku) && !(cart && cart.items.some((item) => item.sku === sku)),
  );
  await Promise.all(
    missing.map(async (sku) => {
      try {
        const page = await api(`products/?sku=${encodeURIComponent(sku)}`);
        productNames.set(sku, page.results.length ? page.results[0].name : sku);
      } catch {
        // The sku stands in for the name.
      }
    }),
  );
}

async function readWaitlist() {
  try {
    entries = await loadWaitlist();
  } catch {
    // The cart works without its waitlists; the next poll tries again.
  }
  await loadNames();
}

/** Reads the entries again; when one changed state (an offer made, claimed or lapsed)
 * the cart is read again too (an offer puts its line in the cart) and the change said. */
async function pollWaitlist() {
  if (pollingWaitlist || Date.now() < nextWaitlistPoll) return;
  pollingWaitlist = true;
  try {
    const before = new Map(entries.map((entry) => [entry.id, entry.status]));
    await readWaitlist();
    const changed = entries.filter((entry) => before.has(entry.id) && before.get(entry.id) !== entry.status);
    if (changed.length) {
      await refresh({ waitlist: false });
      for (const entry of changed) tellChange(entry, before.get(entry.id));
    } else {
      renderWaitlists();
    }
  } finally {
    pollingWaitlist = false;
    const lapsed = entries.some((entry) => entry.status === "offered" && secondsUntil(entry.offer_expires_at) === 0);
    // An offer whose time is up stays `offered` until the sweeper ends it.
    nextWaitlistPoll = Date.now() + (lapsed ? 5000 : 1000);
  }
}

function tellChange(entry, before) {
  const name = nameOf(entry.sku);
  if (entry.status === "offered") {
    announce(`It is your turn: ${name} is in your cart and held for you. Check out now to buy it.`);
  } else if (entry.status === "expired" && before === "offered") {
    showAlert(
      notice,
      {
        code: "OFFER_LAPSED",
        title: `Your hold on ${name} ran out`,
        text: "It passed to the next shopper in line. You can join the waitlist again.",
      },
      {
        kind: "warning",
        focus: false,
        actions: [el("a", { href: `/products/${encodeURIComponent(entry.sku)}/#waitlist`, class: "button-link secondary" }, "Join the waitlist again")],
      },
    );
    announce(`Your hold on ${name} ran out and passed to the next shopper in line.`);
  } else if (entry.status === "cancelled") {
    announce(`Your turn for ${name} came while your cart was in checkout, so it passed to the next shopper in line.`);
  }
}

async function onLeave(entry, button) {
  const name = nameOf(entry.sku);
  setBusy(button, true);
  try {
    await leaveWaitlist(entry.id);
    await readWaitlist();
    renderWaitlists();
    announce(`You left the waitlist for ${name}.`);
    heading.focus();
  } catch (error) {
    setBusy(button, false);
    showAlert(notice, describeError(error));
  }
}

function isShort(check) {
  return check && (check.status === "out_of_stock" || check.status === "insufficient");
}

function lineStatus(check) {
  if (!check) return null;
  if (check.status === "insufficient" && check.available <= 0) return "out_of_stock";
  return check.status;
}

function heldCell(offer) {
  return el(
    "td",
    { "data-label": "Stock" },
    el("span", { class: "badge badge-held", dataset: { stockStatus: "held" } }, "Held for you"),
    " ",
    offerCountdown(offer.offer_expires_at),
    " left",
  );
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
  const offer = editable ? offerFor(item) : null;
  const latest = latestEntry(item.sku);
  // The line an offer put in the cart stays after the offer lapsed: say why it ran out.
  const lapsed = !offer && isShort(check) && latest && latest.status === "expired";
  return el(
    "tr",
    {
      dataset: { itemId: item.id, sku: item.sku, stockStatus: status || "unknown", ...(offer ? { held: "" } : {}) },
      class: offer ? "line-held" : isShort(check) ? "line-problem" : null,
    },
    el(
      "th",
      { scope: "row" },
      el("span", { class: "line-name" }, item.name),
      el("span", { class: "sku" }, item.sku),
      lapsed
        ? el(
            "span",
            { class: "line-note" },
            "Your turn for this item ran out and passed to the next shopper in line. ",
            el("a", { href: `/products/${encodeURIComponent(item.sku)}/#waitlist` }, "Join the waitlist again"),
          )
        : null,
    ),
    el("td", { "data-label": "Price" }, money(item.unit_price, cart.currency)),
    el("td", { "data-label": "Quantity" }, quantityForm),
    offer
      ? heldCell(offer)
      : el(
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
  renderWaitlists();
  renderOffers();
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

async function refresh({ waitlist = true } = {}) {
  try {
    cart = await loadCart();
    if (waitlist) await readWaitlist();
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
  const offer = cart.status === "checkout" ? null : offerFor(item);
  const held = cart.status === "checkout" || Boolean(offer);
  const question = offer ? giveUpTurnQuestion(item.name, offer.quantity) : releaseHoldQuestion(item.name, item.quantity);
  if (held && !window.confirm(question)) return;
  try {
    // A line offered from the waitlist: giving the turn up passes its hold on at once.
    if (offer) {
      await leaveWaitlist(offer.id);
      await readWaitlist();
    }
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

async function goToCheckout() {
  setBusy(checkoutButton, true, "Checking stock…");
  await validate();
  setBusy(checkoutButton, false);
  render();
  if (!checkoutButton.disabled) {
    window.location.assign("/checkout/");
  } else if (!stockNotice.hidden) {
    stockNotice.firstElementChild.focus();
  }
}

checkoutButton.addEventListener("click", goToCheckout);
heading.setAttribute("tabindex", "-1");
refresh();
window.setInterval(tickOffers, 1000);
window.setInterval(() => {
  if (document.visibilityState === "visible" && entries.some((entry) => OPEN_STATUSES.has(entry.status))) pollWaitlist();
}, WAITLIST_POLL_MS);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && entries.some((entry) => OPEN_STATUSES.has(entry.status))) pollWaitlist();
});
