// The REST API as the storefront uses it (API.md). The shopper's cart id and secret
// token live in the `storefront_cart` cookie (`<id>:<token>`), which the storefront's own
// pages also read and write when a shopper adds to the cart without JavaScript
// (storefront/cart_cookie.py); a copy in localStorage is kept for carts stored before the
// cookie. Every cart, checkout and order request carries the token in the X-Cart-Token
// header.

const API_ROOT = document.body.dataset.apiRoot || "/api/v1/";
const CART_KEY = "storefront.cart";
const ORDERS_KEY = "storefront.orders";
const LOOKUPS_KEY = "storefront.orderLookups";
const CART_COOKIE = "storefront_cart";
const CART_COOKIE_MAX_AGE = 30 * 24 * 3600;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

function readJson(key, fallback) {
  try {
    const raw = window.localStorage.getItem(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch {
    return fallback;
  }
}

function writeJson(key, value) {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or a full quota: the page still works until it is reloaded.
  }
}

function readCartCookie() {
  const entry = document.cookie.split("; ").find((part) => part.startsWith(`${CART_COOKIE}=`));
  if (!entry) return null;
  const [id, token] = decodeURIComponent(entry.slice(CART_COOKIE.length + 1)).split(":");
  return id && token ? { id, token } : null;
}

function writeCartCookie(cart) {
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  // A UUID and a URL-safe token: nothing in the value needs escaping.
  document.cookie =
    `${CART_COOKIE}=${cart.id}:${cart.token}; Path=/; ` +
    `Max-Age=${CART_COOKIE_MAX_AGE}; SameSite=Lax${secure}`;
}

function rememberCart(cart) {
  writeJson(CART_KEY, { id: cart.id, token: cart.token });
  writeCartCookie(cart);
}

/** The shopper's cart {id, token}: the cookie's (shared with the pages' own forms), else
 * the one stored before the cookie existed, which is then copied to the cookie. */
export function storedCart() {
  const fromCookie = readCartCookie();
  const cart = readJson(CART_KEY, null);
  if (fromCookie) {
    if (!cart || cart.id !== fromCookie.id) writeJson(CART_KEY, fromCookie);
    return fromCookie;
  }
  if (!(cart && cart.id && cart.token)) return null;
  writeCartCookie(cart);
  return cart;
}

export function forgetCart() {
  document.cookie = `${CART_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`;
  try {
    window.localStorage.removeItem(CART_KEY);
  } catch {
    // nothing stored
  }
}

export function rememberOrder(orderId, token) {
  const orders = readJson(ORDERS_KEY, {});
  orders[orderId] = token;
  writeJson(ORDERS_KEY, orders);
}

export function orderToken(orderId) {
  return readJson(ORDERS_KEY, {})[orderId] || null;
}

/** The token of POST orders/lookup/ for an order found by number and email; it reads
 * the order as X-Order-Token. */
export function rememberOrderLookup(orderId, token) {
  const lookups = readJson(LOOKUPS_KEY, {});
  lookups[orderId] = token;
  writeJson(LOOKUPS_KEY, lookups);
}

export function orderLookupToken(orderId) {
  return readJson(LOOKUPS_KEY, {})[orderId] || null;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export function newIdempotencyKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    return window.crypto.randomUUID();
  }
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One API call. Resolves with the parsed body; rejects with an ApiError carrying the
 * envelope's code, message and details (or NETWORK_ERROR when there was no answer). */
export async function api(path, { method = "GET", body, token, headers = {} } = {}) {
  const url = /^https?:/.test(path) ? path : API_ROOT + path;
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (token) sent["X-Cart-Token"] = token;
  if (method !== "GET") sent["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "NETWORK_ERROR", "The shop could not be reached", {});
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || "ERROR",
      error.message || response.statusText,
      error.details || {},
    );
  }
  return data;
}

/** A request on the stored cart: `cartApi("items/", {...})` → /carts/<id>/items/. */
export function cartApi(suffix, options = {}) {
  const cart = storedCart();
  if (!cart) {
    return Promise.reject(new ApiError(404, "CART_NOT_FOUND", "Cart not found", {}));
  }
  return api(`carts/${cart.id}/${suffix}`, { ...options, token: cart.token });
}

/** The shopper's current cart, or null when there is none any more (never created,
 * unknown to the server, or already turned into an order). */
export async function loadCart() {
  if (!storedCart()) return null;
  try {
    const cart = await cartApi("");
    if (cart.status === "completed") {
      forgetCart();
      return null;
    }
    return cart;
  } catch (error) {
    if (error.code === "CART_NOT_FOUND") {
      forgetCart();
      return null;
    }
    throw error;
  }
}

async function createCart(currency) {
  const cart = await api("carts/", { method: "POST", body: currency ? { currency } : {} });
  rememberCart(cart);
  return cart;
}

/** Runs `change()` (a request on the stored cart) with a cart the shopper can use: one is
 * created first when there is none, or when the stored one is gone (unknown to the
 * server, or already turned into an order). */
async function onUsableCart(currency, change) {
  if (!storedCart()) await createCart(currency);
  try {
    return await change();
  } catch (error) {
    const gone =
      error.code === "CART_NOT_FOUND" ||
      (error.code === "INVALID_CART_STATUS" && error.details.status === "completed");
    if (!gone) throw error;
    forgetCart();
    await createCart(currency);
    return change();
  }
}

/** Adds `quantity` of `sku`, creating a cart first when the shopper has none usable. */
export function addToCart(sku, quantity, currency) {
  return onUsableCart(currency, () => cartApi("items/", { method: "POST", body: { sku, quantity } }));
}

/** The cart's waitlist entries, newest first (API.md "Waitlists"); none without a cart. */
export async function loadWaitlist() {
  if (!storedCart()) return [];
  try {
    return (await cartApi("waitlist/")).entries;
  } catch (error) {
    if (error.code === "CART_NOT_FOUND") return [];
    throw error;
  }
}

/** Joins the waitlist of `sku` for `quantity` units (a cart is created first when the
 * shopper has none usable); resolves with the entry. */
export function joinWaitlist(sku, quantity, currency) {
  return onUsableCart(currency, () => cartApi("waitlist/", { method: "POST", body: { sku, quantity } }));
}

/** Leaves a waitlist: resolves with the entry, `cancelled` (or as it had ended). */
export function leaveWaitlist(entryId) {
  return cartApi(`waitlist/${entryId}/`, { method: "DELETE" });
}
