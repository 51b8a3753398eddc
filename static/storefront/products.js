// Product list: stock badges and add-to-cart.

import { addToCart, api, loadCart } from "./api.js";
import { describeError } from "./messages.js";
import {
  announce,
  el,
  hidden,
  money,
  setBusy,
  showAlert,
  stockBadge,
  updateCartCount,
} from "./ui.js";

const list = document.querySelector("[data-products]");
const loading = document.querySelector("[data-loading]");
const empty = document.querySelector("[data-empty]");
const more = document.querySelector("[data-more]");
const notice = document.querySelector("[data-notice]");
const searchForm = document.querySelector("[data-search-form]");
const searchInput = searchForm.querySelector("input");

let nextUrl = null;
let shownTerm = null;

function currentTerm() {
  return new URLSearchParams(window.location.search).get("search") || "";
}

function productCard(product) {
  const slug = product.id;
  const headingId = `product-${slug}-name`;
  const quantityId = `product-${slug}-quantity`;
  const soldOut = product.stock_status === "out_of_stock" || product.available <= 0;
  const form = el(
    "form",
    { class: "add-form", dataset: { sku: product.sku } },
    el("label", { for: quantityId }, "Quantity"),
    el("input", {
      id: quantityId,
      name: "quantity",
      type: "number",
      inputmode: "numeric",
      min: 1,
      max: Math.max(1, Math.min(1000, product.available)),
      value: 1,
      required: true,
      disabled: soldOut,
    }),
    el(
      "button",
      { type: "submit", disabled: soldOut },
      soldOut ? "Sold out" : ["Add ", hidden(`${product.name} `), "to cart"],
    ),
  );
  form.addEventListener("submit", (event) => onAdd(event, product));
  return el(
    "li",
    {},
    el(
      "article",
      { class: "product", "aria-labelledby": headingId, dataset: { sku: product.sku } },
      el("h2", { id: headingId }, product.name),
      el("p", { class: "sku" }, hidden("Product code: "), product.sku),
      el("p", { class: "price" }, hidden("Price: "), money(product.price, product.currency)),
      el("p", { class: "stock" }, stockBadge(product.stock_status, product.available)),
      form,
    ),
  );
}

async function onAdd(event, product) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button");
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
}

async function loadPage(url) {
  more.hidden = true;
  try {
    const page = await api(url);
    loading.hidden = true;
    list.append(...page.results.map(productCard));
    list.hidden = list.children.length === 0;
    empty.hidden = list.children.length > 0;
    nextUrl = page.next;
    more.hidden = !nextUrl;
  } catch (error) {
    loading.hidden = true;
    showAlert(notice, describeError(error), {
      actions: [el("button", { type: "button", onclick: () => window.location.reload() }, "Try again")],
    });
  }
}

function search() {
  const term = currentTerm();
  shownTerm = term;
  searchInput.value = term;
  list.replaceChildren();
  loading.hidden = false;
  empty.hidden = true;
  loadPage(term ? `products/?search=${encodeURIComponent(term)}` : "products/");
}

searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const url = new URL(window.location.href);
  const term = searchInput.value.trim();
  if (term) url.searchParams.set("search", term);
  else url.searchParams.delete("search");
  window.history.pushState({}, "", url);
  search();
});
// Back/forward between searches shows that search again. Fragment navigation (the skip
// link) fires popstate too; it must not reload the list under the keyboard user's focus.
window.addEventListener("popstate", () => {
  if (currentTerm() !== shownTerm) search();
});
more.addEventListener("click", () => nextUrl && loadPage(nextUrl));

search();
loadCart()
  .then(updateCartCount)
  .catch(() => {});
