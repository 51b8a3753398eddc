// Product list and product page. Django renders the products (name, price, stock badge and
// an add-to-cart form that posts to the storefront, so the pages work without
// JavaScript); this script enhances them: adding to the cart goes through the API without
// a reload, and the stock badges are refreshed from the API on load, after an add and
// every STOREFRONT_STOCK_POLL_SECONDS while the page is visible. The product page of a
// sold-out product also shows its waitlist (waitlist.js).

import { addToCart, api, loadCart } from "./api.js";
import { describeError } from "./messages.js";
import { announce, el, hidden, setBusy, showAlert, stockBadge, updateCartCount } from "./ui.js";
import { initProductWaitlist } from "./waitlist.js";

const config = document.querySelector("[data-product-config]").dataset;
const notice = document.querySelector("[data-notice]");
const pollSeconds = Number(config.pollSeconds) || 30;

function cards() {
  return [...document.querySelectorAll("article.product[data-sku]")];
}

function productOf(card) {
  return { sku: card.dataset.sku, name: card.dataset.name, currency: card.dataset.currency };
}

/** Shows the stock the API reports on one card: its badge, and the form's limits. */
function showStock(card, product) {
  const current = card.querySelector("[data-stock] .badge");
  const badge = stockBadge(product.stock_status, product.available);
  if (!current || current.textContent !== badge.textContent) {
    card.querySelector("[data-stock]").replaceChildren(badge);
  }
  const form = card.querySelector("[data-add-form]");
  const button = form.querySelector("button[type=submit]");
  const soldOut = product.stock_status === "out_of_stock" || product.available <= 0;
  const waitlistLink = card.querySelector("[data-waitlist-link]");
  if (waitlistLink) waitlistLink.hidden = !soldOut;
  if (waitlist && card.contains(waitlist.section)) waitlist.control.setAvailable(soldOut ? 0 : product.available);
  form.elements.quantity.max = String(Math.max(1, Math.min(1000, product.available)));
  form.elements.quantity.disabled = soldOut;
  if (button.getAttribute("aria-busy") === "true") return;
  const wasSoldOut = button.disabled;
  button.disabled = soldOut;
  if (soldOut && !wasSoldOut) button.replaceChildren("Sold out");
  if (!soldOut && wasSoldOut) button.replaceChildren("Add ", hidden(`${product.name} `), "to cart");
}

function badgesPath() {
  if (config.sku) return `products/?sku=${encodeURIComponent(config.sku)}`;
  const query = new URLSearchParams({ page: config.page || "1", page_size: config.pageSize || "24" });
  if (config.search) query.set("search", config.search);
  return `products/?${query}`;
}

async function refreshBadges() {
  let page;
  try {
    page = await api(badgesPath());
  } catch {
    return; // the badges the page was rendered with stay
  }
  const bySku = new Map(page.results.map((product) => [product.sku, product]));
  for (const card of cards()) {
    const product = bySku.get(card.dataset.sku);
    if (product) showStock(card, product);
  }
}

async function onAdd(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const product = productOf(form.closest("article.product"));
  const button = form.querySelector("button[type=submit]");
  const quantity = Number(form.elements.quantity.value);
  setBusy(button, true);
  try {
    const cart = await addToCart(product.sku, quantity, product.currency);
    updateCartCount(cart);
    showAlert(
      notice,
      { title: `Added ${quantity} × ${product.name} to your cart` },
      {
        kind: "success",
        focus: false,
        actions: [el("a", { href: "/cart/", class: "button-link" }, "View cart")],
      },
    );
    announce(`Added ${quantity} ${product.name} to your cart.`);
  } catch (error) {
    const actions = [];
    if (error.code === "INVALID_CART_STATUS" && error.details.status === "checkout") {
      actions.push(
        el("a", { href: "/checkout/", class: "button-link" }, "Go to checkout"),
        el("a", { href: "/cart/", class: "button-link secondary" }, "Go to cart"),
      );
    }
    showAlert(notice, describeError(error, { names: { [product.sku]: product.name } }), { actions });
  } finally {
    setBusy(button, false);
  }
  refreshBadges();
}

// The waitlist of the product page's product, when the page has one.
const waitlistSection = document.querySelector("[data-waitlist]");
const waitlist = waitlistSection
  ? {
      section: waitlistSection,
      control: initProductWaitlist({
        section: waitlistSection,
        product: productOf(waitlistSection.closest("article.product")),
        notice,
        onChange: () => {
          refreshBadges();
          loadCart()
            .then(updateCartCount)
            .catch(() => {});
        },
      }),
    }
  : null;

for (const form of document.querySelectorAll("[data-add-form]")) {
  form.addEventListener("submit", onAdd);
}
refreshBadges();
window.setInterval(() => {
  if (document.visibilityState === "visible") refreshBadges();
}, pollSeconds * 1000);
loadCart()
  .then(updateCartCount)
  .catch(() => {});
