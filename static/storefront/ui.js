// Small DOM helpers shared by the storefront pages.

/** el("p", {class: "x"}, "text", child) → an element; attributes starting with "on" are
 * listeners, `null`/`false` attributes are left out. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function hidden(text) {
  return el("span", { class: "visually-hidden" }, text);
}

const moneyFormats = new Map();

export function money(amount, currency = "USD") {
  const value = Number(amount);
  if (!Number.isFinite(value)) return String(amount);
  if (!moneyFormats.has(currency)) {
    try {
      moneyFormats.set(currency, new Intl.NumberFormat("en-US", { style: "currency", currency }));
    } catch {
      moneyFormats.set(currency, null);
    }
  }
  const format = moneyFormats.get(currency);
  return format ? format.format(value) : `${value.toFixed(2)} ${currency}`;
}

const STATUS_TEXT = {
  in_stock: "In stock",
  low_stock: "Low stock",
  out_of_stock: "Out of stock",
  insufficient: "Not enough stock",
};

/** A stock badge; the words carry the meaning, colour only repeats it. */
export function stockBadge(status, available, requested) {
  let text = STATUS_TEXT[status] || status;
  if (status === "low_stock" && Number.isFinite(available)) {
    text = `Low stock: ${available} left`;
  } else if (status === "insufficient" && Number.isFinite(available)) {
    text = available > 0 ? `Only ${available} left` : "Out of stock";
  }
  const badge = el("span", { class: `badge badge-${status}`, dataset: { stockStatus: status } }, text);
  if (status === "insufficient" && Number.isFinite(requested)) {
    badge.append(hidden(` (you have ${requested} in your cart)`));
  }
  return badge;
}

/** A problem line in shopper's words, for out-of-stock or short lines. */
export function shortageText(name, available, requested) {
  if (available <= 0) return `${name} is out of stock.`;
  return `${name}: only ${available} left, you asked for ${requested}.`;
}

let politeRegion = null;

/** Says `text` to screen readers without moving focus. */
export function announce(text) {
  if (!politeRegion) {
    politeRegion = el("div", { class: "visually-hidden", role: "status", "aria-live": "polite" });
    document.body.append(politeRegion);
  }
  politeRegion.textContent = "";
  window.setTimeout(() => {
    politeRegion.textContent = text;
  }, 50);
}

export function updateCartCount(cart) {
  const target = document.querySelector("[data-cart-count]");
  if (!target) return;
  target.replaceChildren();
  const count = cart && cart.items ? cart.items.reduce((sum, item) => sum + item.quantity, 0) : 0;
  if (count > 0) {
    target.append(" (", String(count), hidden(count === 1 ? " item" : " items"), ")");
  }
}

/** Replaces the content of `container` with an alert box built from a described error
 * (see messages.js) and moves focus to it so keyboard and screen-reader users land on it. */
export function showAlert(container, message, { kind = "error", actions = [], focus = true } = {}) {
  const box = el(
    "div",
    {
      class: `alert alert-${kind}`,
      role: kind === "error" || kind === "warning" ? "alert" : "status",
      tabindex: "-1",
      dataset: message.code ? { errorCode: message.code } : {},
    },
    el("h2", { class: "alert-title" }, message.title),
    message.text ? el("p", {}, message.text) : null,
    message.lines && message.lines.length
      ? el("ul", {}, message.lines.map((line) => el("li", {}, line)))
      : null,
    message.hint ? el("p", {}, message.hint) : null,
    actions.length ? el("div", { class: "alert-actions" }, actions) : null,
  );
  container.replaceChildren(box);
  container.hidden = false;
  if (focus) box.focus();
  return box;
}

export function clearAlert(container) {
  container.replaceChildren();
  container.hidden = true;
}

const idleContent = new WeakMap();

/** Disables `button` while a request runs, optionally saying what it is doing; the
 * original content (including any visually hidden words) comes back afterwards. */
export function setBusy(button, busy, busyText) {
  if (busy) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    if (busyText) {
      idleContent.set(button, [...button.childNodes]);
      button.textContent = busyText;
    }
  } else {
    button.removeAttribute("aria-busy");
    if (idleContent.has(button)) {
      button.replaceChildren(...idleContent.get(button));
      idleContent.delete(button);
    }
    button.disabled = false;
  }
}
