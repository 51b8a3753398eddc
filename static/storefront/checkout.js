// Checkout page: validates stock and starts checkout (which holds the items), shows how
// long they stay held, re-checks stock on a timer, lets the shopper drop lines that ran
// out, saves details as they are entered (which keeps the hold alive), and places the
// order. Every failure is explained and leaves a way forward. A line in high demand
// (SPEC §15, warning HIGH_DEMAND) is held for a shorter time: the countdown shows that
// hold, and a line under it says why.

import { cartApi, forgetCart, loadCart, newIdempotencyKey, rememberOrder, storedCart } from "./api.js";
import {
  PAYMENT_FAILURES,
  describeError,
  holdReleasedText,
  paymentCheckText,
  releaseHoldQuestion,
  retryAfterText,
} from "./messages.js";
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
import { durationWords } from "./waitlist.js";

const config = document.querySelector("[data-checkout-config]");
const POLL_MS = Math.max(1, Number(config.dataset.pollSeconds) || 30) * 1000;

const loading = document.querySelector("[data-loading]");
const notice = document.querySelector("[data-notice]");
const layout = document.querySelector("[data-checkout]");
const hold = document.querySelector("[data-hold]");
const holdText = document.querySelector("[data-hold-text]");
const countdown = document.querySelector("[data-countdown]");
const highDemand = document.querySelector("[data-high-demand]");
const stockWarning = document.querySelector("[data-stock-warning]");
const linesList = document.querySelector("[data-lines]");
const subtotal = document.querySelector("[data-subtotal]");
const total = document.querySelector("[data-total]");
const summaryTitle = document.getElementById("summary-title");
const form = document.querySelector("[data-form]");
const errorSummary = document.querySelector("[data-error-summary]");
const billingSame = document.getElementById("billing-same");
const billingFields = document.querySelector("[data-billing]");
const placeOrder = document.querySelector("[data-place-order]");
const placeBlocked = document.querySelector("[data-place-blocked]");

const ADDRESS_PARTS = ["name", "line1", "line2", "city", "postal_code", "country"];
const REQUIRED_PARTS = ["name", "line1", "city", "postal_code", "country"];

let cart = null;
let inCheckout = false; // the server holds reservations for this cart right now
let expired = false;
let expiresAt = null; // ms since epoch
let checks = new Map(); // item id → latest validate-stock line
let problemSignature = "";
let attemptKey = null; // Idempotency-Key of the order attempt in flight
let paid = false; // the attempt was paid and its order is being finalised (202)
let submitting = false;
let pollTimer = null;
let countdownTimer = null;
let autosaveTimer = null;
let minuteAnnounced = false;
let checkingExpiry = false;
let nextExpiryCheck = 0;
let filledFromState = false;

// --- rendering ---------------------------------------------------------------------

function names() {
  return Object.fromEntries(((cart && cart.items) || []).map((item) => [item.sku, item.name]));
}

function isShort(check) {
  return check && (check.status === "out_of_stock" || check.status === "insufficient");
}

function lineStatus(check) {
  if (check.status === "insufficient" && check.available <= 0) return "out_of_stock";
  return check.status;
}

function renderSummary() {
  linesList.replaceChildren(
    ...cart.items.map((item) => {
      const check = checks.get(String(item.id));
      return el(
        "li",
        {
          class: isShort(check) ? "summary-line line-problem" : "summary-line",
          dataset: { itemId: item.id, sku: item.sku, stockStatus: check ? lineStatus(check) : "unknown" },
        },
        el("span", { class: "line-name" }, item.name),
        el("span", { class: "line-quantity" }, hidden("Quantity: "), `× ${item.quantity}`),
        el("span", { class: "line-total" }, money(item.line_total, cart.currency)),
        check ? el("span", { class: "line-stock" }, stockBadge(lineStatus(check), check.available, check.requested)) : null,
      );
    }),
  );
  subtotal.textContent = money(cart.subtotal, cart.currency);
  total.textContent = money(cart.subtotal, cart.currency);
  updateCartCount(cart);
}

function renderStockWarning() {
  const problems = cart.items.filter((item) => isShort(checks.get(String(item.id))));
  const signature = problems
    .map((item) => {
      const check = checks.get(String(item.id));
      return `${item.id}:${check.available}:${check.requested}`;
    })
    .join("|");
  placeBlocked.hidden = problems.length === 0;
  placeOrder.disabled = submitting || expired || problems.length > 0;
  if (signature === problemSignature) return;
  problemSignature = signature;
  if (!problems.length) {
    clearAlert(stockWarning);
    return;
  }
  const box = showAlert(
    stockWarning,
    {
      title: "Stock has changed since you started checkout",
      text: "Some items sold out or ran low while you were checking out. Remove them to continue, or go back to your cart to change quantities.",
    },
    { kind: "warning", focus: false },
  );
  box.dataset.stockChanged = "";
  box.append(
    el(
      "ul",
      { class: "problem-lines" },
      problems.map((item) => {
        const check = checks.get(String(item.id));
        return el(
          "li",
          {},
          el("span", {}, shortageText(item.name, check.available, check.requested)),
          " ",
          el(
            "button",
            { type: "button", class: "secondary small", onclick: (event) => removeItem(item, event.currentTarget) },
            "Remove",
            hidden(` ${item.name}`),
          ),
        );
      }),
    ),
    el("p", {}, el("a", { href: "/cart/", onclick: backToCart }, "Change quantities in my cart")),
  );
}

// --- hold countdown ----------------------------------------------------------------

/** "High demand: Blue mug is held for 2 minutes only, …" for the HIGH_DEMAND warnings
 * of the checkout state; hidden when there are none. */
function renderHighDemand(warnings) {
  const scarce = (warnings || []).filter((warning) => warning.code === "HIGH_DEMAND");
  if (!scarce.length) {
    highDemand.hidden = true;
    highDemand.textContent = "";
    return;
  }
  const byName = names();
  const products = [...new Set(scarce.map((warning) => byName[warning.sku] || warning.sku))];
  const list = products.length === 1 ? products[0] : `${products.slice(0, -1).join(", ")} and ${products.at(-1)}`;
  const seconds = Math.min(...scarce.map((warning) => Number(warning.ttl_seconds) || 0));
  const text = `High demand: ${list} ${products.length === 1 ? "is" : "are"} held for ${durationWords(seconds)} only, so that more shoppers get a turn.`;
  if (highDemand.textContent !== text) highDemand.textContent = text;
  highDemand.hidden = false;
}

function formatLeft(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

function setExpiry(iso) {
  const next = iso ? new Date(iso).getTime() : null;
  if (next && expiresAt && next > expiresAt + 1000) minuteAnnounced = false;
  expiresAt = next;
  hold.hidden = false;
  hold.classList.remove("hold-released");
  holdText.textContent = "Your items are held for you for";
  tick();
  if (!countdownTimer) countdownTimer = window.setInterval(tick, 1000);
}

function tick() {
  if (!inCheckout || !expiresAt) return;
  const left = Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000));
  countdown.textContent = formatLeft(left);
  countdown.setAttribute("aria-label", `${Math.floor(left / 60)} minutes ${left % 60} seconds`);
  hold.classList.toggle("hold-urgent", left <= 60);
  if (left <= 60 && left > 0 && !minuteAnnounced) {
    minuteAnnounced = true;
    announce("Less than a minute left to place your order before your items are released.");
  }
  if (left === 0) checkExpiry();
}

function stopHold(text) {
  inCheckout = false;
  expiresAt = null;
  if (countdownTimer) window.clearInterval(countdownTimer);
  countdownTimer = null;
  countdown.textContent = "";
  countdown.removeAttribute("aria-label");
  holdText.textContent = text;
  hold.classList.remove("hold-urgent");
  hold.classList.add("hold-released");
  renderHighDemand([]);
}

async function checkExpiry() {
  if (checkingExpiry || Date.now() < nextExpiryCheck || submitting) return;
  checkingExpiry = true;
  try {
    const state = await cartApi("checkout/");
    applyState(state);
    if (!expiresAt || expiresAt <= Date.now()) nextExpiryCheck = Date.now() + 2000;
  } catch (error) {
    if (error.code === "CHECKOUT_EXPIRED") showExpired(error);
    else if (error.code === "INVALID_CART_STATUS") await sync();
    else nextExpiryCheck = Date.now() + 5000;
  } finally {
    checkingExpiry = false;
  }
}

function showExpired(error) {
  expired = true;
  stopHold("Your items are no longer held.");
  renderStockWarning();
  const restart = el("button", { type: "button", class: "primary", onclick: restartCheckout }, "Start checkout again");
  showAlert(notice, describeError(error), { actions: [restart] });
}

// --- checkout state ----------------------------------------------------------------

function applyState(state) {
  if (state.cart) cart = state.cart;
  inCheckout = state.status === "checkout" || (state.cart && state.cart.status === "checkout");
  if (!filledFromState) {
    filledFromState = true;
    fillForm(state);
  }
  renderSummary();
  if (inCheckout) {
    setExpiry(state.reservation_expires_at || (state.cart && state.cart.expires_at));
    renderHighDemand(state.warnings);
  }
}

/** The server's word on whether the cart is still in checkout, after an error. */
async function sync() {
  try {
    const current = await loadCart();
    if (!current) return;
    cart = current;
    renderSummary();
    if (current.status === "checkout") {
      inCheckout = true;
      setExpiry(current.expires_at);
    } else if (inCheckout) {
      stopHold("Your items are no longer held. We will hold them again when you place your order.");
    }
  } catch {
    // The next action reports the problem.
  }
}

async function start() {
  const state = await cartApi("checkout/", { method: "POST", body: {} });
  expired = false;
  applyState(state);
  renderStockWarning();
  return state;
}

async function pollStock() {
  try {
    const result = await cartApi("validate-stock/");
    checks = new Map((result.items || []).map((check) => [String(check.item_id), check]));
    renderSummary();
    renderStockWarning();
  } catch (error) {
    if (error.code === "CART_NOT_FOUND") stopPolling();
  }
}

function startPolling() {
  if (!pollTimer) pollTimer = window.setInterval(pollStock, POLL_MS);
}

function stopPolling() {
  if (pollTimer) window.clearInterval(pollTimer);
  pollTimer = null;
}

function stockProblemActions() {
  return [el("a", { href: "/cart/", class: "button-link", onclick: backToCart }, "Review your cart")];
}

function showBlocked(message, actions) {
  loading.hidden = true;
  layout.hidden = true;
  stopPolling();
  showAlert(notice, message, { actions });
}

async function init() {
  try {
    cart = await loadCart();
  } catch (error) {
    showBlocked(describeError(error), [
      el("button", { type: "button", onclick: () => window.location.reload() }, "Try again"),
    ]);
    return;
  }
  if (!cart || !cart.items.length) {
    showBlocked({ title: "Your cart is empty", text: "Add something to your cart before checking out." }, [
      el("a", { href: "/", class: "button-link" }, "Browse products"),
    ]);
    return;
  }
  updateCartCount(cart);
  try {
    if (cart.status === "checkout") {
      applyState(await cartApi("checkout/"));
    } else {
      const result = await cartApi("validate-stock/");
      checks = new Map((result.items || []).map((check) => [String(check.item_id), check]));
      if (!result.ok) {
        const short = cart.items.filter((item) => isShort(checks.get(String(item.id))));
        showBlocked(
          {
            code: "INSUFFICIENT_STOCK",
            title: "Some items are not available in the quantities you want",
            lines: short.map((item) => {
              const check = checks.get(String(item.id));
              return shortageText(item.name, check.available, check.requested);
            }),
            hint: "Change your cart, then come back to checkout.",
          },
          stockProblemActions(),
        );
        return;
      }
      await start();
    }
  } catch (error) {
    if (error.code === "CHECKOUT_EXPIRED") {
      loading.hidden = true;
      layout.hidden = false;
      renderSummary();
      startPolling();
      pollStock();
      showExpired(error);
      return;
    }
    showBlocked(
      describeError(error, { names: names() }),
      error.code === "INSUFFICIENT_STOCK" ? stockProblemActions() : [el("a", { href: "/cart/", class: "button-link" }, "Back to cart")],
    );
    return;
  }
  loading.hidden = true;
  layout.hidden = false;
  pollStock();
  startPolling();
}

async function restartCheckout(event) {
  const button = event.currentTarget;
  setBusy(button, true, "Holding your items…");
  try {
    await start();
    await pollStock();
    showAlert(
      notice,
      { title: "Your items are held for you again", text: "Check your details and place your order." },
      { kind: "success" },
    );
  } catch (error) {
    setBusy(button, false);
    const actions = error.code === "INSUFFICIENT_STOCK" ? stockProblemActions() : [];
    showAlert(notice, describeError(error, { names: names() }), { actions });
  }
}

async function removeItem(item, button) {
  // The line's items are held for the shopper: say what removing it gives up, first.
  if (!window.confirm(releaseHoldQuestion(item.name, item.quantity))) return;
  setBusy(button, true);
  try {
    const updated = await cartApi(`items/${item.id}/`, { method: "DELETE" });
    cart = updated;
    checks.delete(String(item.id));
    if (!cart.items.length) {
      // Nothing left to buy: give the cart back so it can be filled again.
      if (cart.status === "checkout") cart = await cartApi("checkout/", { method: "DELETE" });
      stopHold("");
      updateCartCount(cart);
      showBlocked({ title: "Your cart is now empty", text: `${holdReleasedText(item.name, item.quantity)} The items that ran out were removed.` }, [
        el("a", { href: "/", class: "button-link" }, "Browse products"),
      ]);
      return;
    }
    renderSummary();
    renderStockWarning();
    await pollStock();
    const released = holdReleasedText(item.name, item.quantity);
    showAlert(notice, { code: "HOLD_RELEASED", title: released, text: `Your new total is ${money(cart.subtotal, cart.currency)}.` }, { kind: "success", focus: false });
    announce(`${released} Your new total is ${money(cart.subtotal, cart.currency)}.`);
    summaryTitle.focus();
  } catch (error) {
    setBusy(button, false);
    showAlert(notice, describeError(error, { names: names() }));
  }
}

async function backToCart(event) {
  // Leaving checkout to edit the cart releases the hold so the cart becomes editable.
  event.preventDefault();
  if (inCheckout) {
    try {
      await cartApi("checkout/", { method: "DELETE" });
    } catch {
      // The cart page explains whatever state the cart is in.
    }
  }
  window.location.assign("/cart/");
}

// --- the form ----------------------------------------------------------------------

function fillForm(state) {
  for (const prefix of ["shipping_address", "billing_address"]) {
    const address = state[prefix];
    if (!address) continue;
    for (const part of ADDRESS_PARTS) {
      const field = form.elements[`${prefix}.${part}`];
      if (field && !field.value && address[part]) field.value = address[part];
    }
  }
  if (state.billing_address && state.shipping_address) {
    const same = ADDRESS_PARTS.every((part) => (state.billing_address[part] || "") === (state.shipping_address[part] || ""));
    billingSame.checked = same;
    toggleBilling();
  }
  if (state.email && !form.elements.email.value) form.elements.email.value = state.email;
  for (const name of ["payment_method", "shipping_method_id"]) {
    const radio = state[name] && form.querySelector(`input[name="${name}"][value="${CSS.escape(state[name])}"]`);
    if (radio) radio.checked = true;
  }
}

function readAddress(prefix, { onlyComplete }) {
  const address = {};
  for (const part of ADDRESS_PARTS) {
    const value = (form.elements[`${prefix}.${part}`].value || "").trim();
    if (value) address[part] = value;
  }
  if (onlyComplete && !REQUIRED_PARTS.every((part) => address[part])) return null;
  return address;
}

function formBody({ onlyComplete, step }) {
  const body = { current_step: step };
  // The email is optional; autosave sends it only once it looks complete.
  const email = form.elements.email;
  if (email.value.trim() && (!onlyComplete || email.checkValidity())) body.email = email.value.trim();
  const shipping = readAddress("shipping_address", { onlyComplete });
  if (shipping) body.shipping_address = shipping;
  const billing = billingSame.checked ? shipping : readAddress("billing_address", { onlyComplete });
  if (billing) body.billing_address = billing;
  for (const name of ["payment_method", "shipping_method_id"]) {
    const chosen = form.querySelector(`input[name="${name}"]:checked`);
    if (chosen) body[name] = chosen.value;
  }
  return body;
}

function toggleBilling() {
  billingFields.hidden = billingSame.checked;
  billingFields.disabled = billingSame.checked;
}

function flattenErrors(value, path, out) {
  if (Array.isArray(value)) {
    for (const entry of value) {
      if (entry && typeof entry === "object") flattenErrors(entry, path, out);
      else out.push([path, String(entry)]);
    }
  } else if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) {
      flattenErrors(inner, path ? `${path}.${key}` : key, out);
    }
  } else if (value !== undefined && value !== null) {
    out.push([path, String(value)]);
  }
}

function clearFieldErrors() {
  for (const node of form.querySelectorAll(".field-error")) node.remove();
  for (const node of form.querySelectorAll("[aria-invalid]")) {
    node.removeAttribute("aria-invalid");
    const describedBy = (node.getAttribute("aria-describedby") || "")
      .split(" ")
      .filter((id) => id && !id.endsWith("-error"));
    if (describedBy.length) node.setAttribute("aria-describedby", describedBy.join(" "));
    else node.removeAttribute("aria-describedby");
  }
  clearAlert(errorSummary);
}

function fieldFor(path) {
  let target = path;
  if (billingSame.checked && target.startsWith("billing_address")) target = target.replace("billing_address", "shipping_address");
  const direct = form.elements[target];
  if (direct instanceof HTMLElement) return direct;
  if (direct && direct.length) return direct[0];
  return form.querySelector(`[data-field="${CSS.escape(target.split(".")[0])}"]`) || form.elements[`${target}.name`] || null;
}

function labelFor(field) {
  if (!field) return "Your details";
  const label = field.id && form.querySelector(`label[for="${CSS.escape(field.id)}"]`);
  if (field.type === "radio" || field.tagName === "FIELDSET") {
    const group = field.closest("fieldset");
    return group ? group.querySelector("legend").textContent : "Your details";
  }
  return label ? label.textContent.replace("(optional)", "").trim() : field.name;
}

function showFieldErrors(details) {
  const found = [];
  flattenErrors(details.fields || {}, "", found);
  const entries = [];
  for (const [path, message] of found) {
    const field = fieldFor(path);
    const label = labelFor(field);
    if (field && field.id) {
      const errorId = `${field.id}-error`;
      let note = document.getElementById(errorId);
      if (!note) {
        note = el("p", { class: "field-error", id: errorId }, message);
        (field.type === "radio" ? field.closest("fieldset").querySelector("legend") : field).after(note);
      } else {
        note.textContent += ` ${message}`;
      }
      field.setAttribute("aria-invalid", "true");
      const describedBy = new Set((field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
      describedBy.add(errorId);
      field.setAttribute("aria-describedby", [...describedBy].join(" "));
      entries.push(el("li", {}, el("a", { href: `#${field.id}` }, `${label}: ${message}`)));
    } else {
      entries.push(el("li", {}, `${label}: ${message}`));
    }
  }
  const box = showAlert(errorSummary, describeError({ code: "VALIDATION_ERROR" }));
  if (entries.length) box.append(el("ul", {}, entries));
}

async function autosave() {
  autosaveTimer = null;
  if (!inCheckout || submitting || expired) return;
  try {
    const state = await cartApi("checkout/", { method: "PATCH", body: formBody({ onlyComplete: true, step: 1 }) });
    // An order attempt that started meanwhile has the newer word on the cart.
    if (!submitting) applyState(state);
  } catch (error) {
    if (error.code === "CHECKOUT_EXPIRED" && !submitting) showExpired(error);
    // Anything else is reported when the order is placed.
  }
}

function scheduleAutosave() {
  if (autosaveTimer) window.clearTimeout(autosaveTimer);
  autosaveTimer = window.setTimeout(autosave, 800);
}

async function handleFailure(error) {
  if (error.code === "CHECKOUT_EXPIRED") {
    showExpired(error);
    return;
  }
  if (error.code === "VALIDATION_ERROR") {
    showFieldErrors(error.details || {});
    return;
  }
  const message = describeError(error, { names: names() });
  const actions = error.code === "INSUFFICIENT_STOCK" ? stockProblemActions() : [];
  if (PAYMENT_FAILURES.has(error.code)) {
    // The server released the hold and returned the cart to active; placing the order
    // again holds the items again.
    stopHold("Your items are no longer held. We will hold them again when you place your order.");
    const payment = form.querySelector('input[name="payment_method"]:checked') || form.querySelector('input[name="payment_method"]');
    actions.push(el("a", { href: `#${payment.id}`, class: "button-link secondary" }, "Choose a payment method"));
  }
  const box = showAlert(notice, message, { actions });
  if (error.code === "PAYMENT_UNAVAILABLE") countDownToRetry(box, error.details || {});
  if (message.code === "PAYMENT_BEING_CHECKED") countDownToRetry(box, error.details, paymentCheckText);
  if (!PAYMENT_FAILURES.has(error.code)) await sync();
  if (error.code === "INSUFFICIENT_STOCK") await pollStock();
}

// 503 PAYMENT_UNAVAILABLE: the payment service's circuit breaker is open. Nothing was
// charged and the hold stays (its countdown keeps running); the alert counts down the
// seconds until payments are tried again, then offers to place the order again.
let retryTimer = null;

function countDownToRetry(box, details, textFor = retryAfterText) {
  if (retryTimer) window.clearInterval(retryTimer);
  const hint = box.querySelector("p:last-of-type");
  hint.dataset.retryCountdown = "";
  const until = Date.now() + Math.max(1, Number(details.retry_after_seconds) || 1) * 1000;
  const tick = () => {
    if (!box.isConnected) {
      window.clearInterval(retryTimer);
      retryTimer = null;
      return;
    }
    const left = Math.ceil((until - Date.now()) / 1000);
    hint.textContent = textFor(left);
    if (left <= 0) {
      window.clearInterval(retryTimer);
      retryTimer = null;
      box.append(
        el("div", { class: "alert-actions" }, el("button", { type: "button", onclick: () => form.requestSubmit() }, "Place your order again")),
      );
    }
  };
  tick();
  retryTimer = window.setInterval(tick, 1000);
}

async function placeTheOrder() {
  // Once paid (202), only the same confirm again: the cart may be completed meanwhile,
  // and the key then answers with the order.
  if (!paid) {
    if (!inCheckout) await start();
    applyState(await cartApi("checkout/", { method: "PATCH", body: formBody({ onlyComplete: false, step: 2 }) }));
  }
  attemptKey = attemptKey || newIdempotencyKey();
  try {
    return await cartApi("checkout/confirm/", {
      method: "POST",
      body: {},
      headers: { "Idempotency-Key": attemptKey },
    });
  } catch (error) {
    // Without an answer the order may exist: the same key asks again safely. Any answer
    // settles this attempt, so the next one gets a new key.
    if (error.code !== "NETWORK_ERROR") attemptKey = null;
    throw error;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (submitting || expired) return;
  if (autosaveTimer) window.clearTimeout(autosaveTimer);
  autosaveTimer = null;
  submitting = true;
  clearFieldErrors();
  clearAlert(notice);
  setBusy(placeOrder, true, "Placing your order…");
  form.setAttribute("aria-busy", "true");
  try {
    const order = await placeTheOrder();
    if (!order.id) {
      // 202 {status: "processing", payment_id}: paid, but the order is not written yet
      // (an order has an id; its own status may be "processing" too). Placing the order
      // again with the same key finishes it without a second charge.
      paid = true;
      showAlert(
        notice,
        {
          code: "PAYMENT_PROCESSING",
          title: "Your payment was received",
          text: "Your order is being finalised. You will not be charged again.",
          hint: "This usually takes a moment. Check again to see your order; if you leave this page we still finish it for you within a few minutes, and if we cannot, our staff are alerted and your payment is refunded.",
        },
        {
          kind: "warning",
          actions: [el("button", { type: "button", onclick: () => form.requestSubmit() }, "Check again")],
        },
      );
      submitting = false;
      setBusy(placeOrder, false);
      return;
    }
    const stored = storedCart();
    if (stored) rememberOrder(order.id, stored.token);
    forgetCart();
    stopPolling();
    window.location.assign(`/orders/${order.id}/`);
    return;
  } catch (error) {
    await handleFailure(error);
  } finally {
    form.removeAttribute("aria-busy");
  }
  submitting = false;
  setBusy(placeOrder, false);
  renderStockWarning();
});

form.addEventListener("change", scheduleAutosave);
billingSame.addEventListener("change", toggleBilling);

init();
