// Waitlists (SPEC §15) as the shopper sees them. On the product page of a sold-out
// product: join the waitlist, then the place in line, read again every
// STOREFRONT_WAITLIST_POLL_SECONDS while the page is visible; when the turn comes, the
// offer held in the cart with its countdown and a way to check out; how a turn ended
// (claimed, lapsed, passed on). The cart page uses the words and the countdown helpers.
// The page works without this script: joining and leaving are then plain form posts
// (templates/storefront/_waitlist.html, which uses the same words).

import { joinWaitlist, leaveWaitlist, loadWaitlist } from "./api.js";
import { describeError, giveUpTurnQuestion } from "./messages.js";
import { clearAlert, setBusy, showAlert } from "./ui.js";

export const OPEN_STATUSES = new Set(["waiting", "offered"]);

/** 299 → "4:59". */
export function formatLeft(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

/** Seconds until an ISO time, never below 0. */
export function secondsUntil(iso) {
  if (!iso) return 0;
  return Math.max(0, Math.ceil((new Date(iso).getTime() - Date.now()) / 1000));
}

/** 120 → "2 minutes", 60 → "1 minute", 90 → "90 seconds" (as storefront/views.py says it). */
export function durationWords(seconds) {
  const value = Math.max(0, Math.round(Number(seconds) || 0));
  if (value % 60 === 0) {
    const minutes = value / 60;
    return `${minutes} minute${minutes === 1 ? "" : "s"}`;
  }
  return `${value} second${value === 1 ? "" : "s"}`;
}

/** Shows the time left on a countdown element (role="timer"), with words for screen
 * readers that read it on demand. */
export function showLeft(node, seconds) {
  node.textContent = formatLeft(seconds);
  node.setAttribute("aria-label", `${Math.floor(seconds / 60)} minutes ${seconds % 60} seconds`);
}

/** What an entry's state means for the shopper, in one sentence: the same words as
 * templates/storefront/_waitlist.html. `left` is true when the shopper left the line
 * on this page; otherwise a cancelled entry was passed over because its cart was being
 * checked out when its turn came. */
export function entryText(entry, name, { left = false } = {}) {
  const what = `${entry.quantity} × ${name}`;
  switch (entry.status) {
    case "waiting":
      return `You are number ${entry.position} in line.`;
    case "offered":
      return `It is your turn: ${what} is in your cart, held for you.`;
    case "claimed":
      return `Your turn came and ${what} went to checkout with your cart.`;
    case "expired":
      return "Your turn came, but the hold ran out before checkout, so it passed to the next shopper in line.";
    case "cancelled":
      return left
        ? "You left the waitlist."
        : "Your turn came while your cart was in checkout, so it passed to the next shopper in line.";
    default:
      return "";
  }
}

/**
 * The waitlist section of a product page (`section`, see _waitlist.html) for `product`
 * {sku, name, currency}. `notice` shows errors; `onChange()` runs when the entry's
 * status changed (the page refreshes its stock badge and cart count). Returns
 * `{setAvailable(available)}`, which the page calls with each stock reading: the join
 * form is offered only while the product is sold out.
 */
export function initProductWaitlist({ section, product, notice, onChange = () => {} }) {
  const status = section.querySelector("[data-waitlist-status]");
  const offerBox = section.querySelector("[data-waitlist-offer]");
  const countdown = section.querySelector("[data-offer-countdown]");
  const joinForm = section.querySelector("[data-waitlist-join]");
  const leaveForm = section.querySelector("[data-waitlist-leave]");
  const leaveButton = leaveForm.querySelector("button");
  const pollMs = Math.max(1, Number(section.dataset.pollSeconds) || 10) * 1000;

  let soldOut = section.dataset.soldOut === "true";
  // As the page was rendered, until the API answers.
  let entry = section.dataset.entryId
    ? {
        id: Number(section.dataset.entryId),
        status: section.dataset.entryStatus,
        offer_expires_at: section.dataset.offerExpiresAt || null,
      }
    : null;
  let left = false;
  let polling = false;
  let nextPollAt = 0;
  let pollTimer = null;
  let countdownTimer = null;

  const isOpen = () => Boolean(entry && OPEN_STATUSES.has(entry.status));

  function tick() {
    if (!entry || entry.status !== "offered") return;
    const seconds = secondsUntil(entry.offer_expires_at);
    showLeft(countdown, seconds);
    section.querySelector(".hold").classList.toggle("hold-urgent", seconds <= 60);
    if (seconds === 0) poll(); // lapsed: learn where the turn went
  }

  function render() {
    section.hidden = !(soldOut || entry);
    const text = entry && entry.quantity !== undefined ? entryText(entry, product.name, { left }) : null;
    // The status is a live region: it is rewritten only when its words change, so a
    // screen reader hears each new place in line once.
    if (text !== null && status.textContent.trim() !== text) status.textContent = text;
    if (!entry) status.textContent = "";
    section.dataset.entryStatus = entry ? entry.status : "";
    const offered = Boolean(entry && entry.status === "offered");
    offerBox.hidden = !offered;
    joinForm.hidden = !soldOut || isOpen();
    leaveForm.hidden = !isOpen();
    if (isOpen()) leaveForm.elements.entry_id.value = String(entry.id);
    if (leaveButton.getAttribute("aria-busy") !== "true") {
      leaveButton.textContent = offered ? "Give up my turn" : "Leave the waitlist";
    }
    if (offered && !countdownTimer) countdownTimer = window.setInterval(tick, 1000);
    if (!offered && countdownTimer) {
      window.clearInterval(countdownTimer);
      countdownTimer = null;
    }
    tick();
    if (isOpen() && !pollTimer) {
      pollTimer = window.setInterval(() => {
        if (document.visibilityState === "visible") poll();
      }, pollMs);
    }
    if (!isOpen() && pollTimer) {
      window.clearInterval(pollTimer);
      pollTimer = null;
    }
  }

  function apply(latest) {
    const before = entry ? entry.status : null;
    entry = latest;
    render();
    if (before !== (entry ? entry.status : null)) onChange(entry);
  }

  async function poll() {
    if (polling || Date.now() < nextPollAt) return;
    polling = true;
    try {
      const entries = await loadWaitlist();
      const latest = entries.find((candidate) => candidate.sku === product.sku) || null;
      // A line left before this page was opened is nothing to show.
      const shown = latest && latest.status === "cancelled" && !(entry && entry.id === latest.id) ? null : latest;
      apply(shown);
    } catch {
      // What is shown stays; the next poll tries again.
    } finally {
      polling = false;
      // An offer whose time is up stays `offered` until the sweeper ends it: ask every
      // few seconds meanwhile, not on every tick.
      const lapsed = entry && entry.status === "offered" && secondsUntil(entry.offer_expires_at) === 0;
      nextPollAt = Date.now() + (lapsed ? 5000 : 1000);
    }
  }

  joinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = joinForm.querySelector("button[type=submit]");
    const quantity = Number(joinForm.elements.quantity.value);
    setBusy(button, true);
    try {
      const joined = await joinWaitlist(product.sku, quantity, product.currency);
      left = false;
      clearAlert(notice);
      apply(joined);
      status.focus();
    } catch (error) {
      showAlert(notice, describeError(error, { names: { [product.sku]: product.name } }));
      if (error.code === "STOCK_AVAILABLE") onChange(entry); // the add form comes back
    } finally {
      setBusy(button, false);
    }
  });

  leaveForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!isOpen()) return;
    if (entry.status === "offered" && !window.confirm(giveUpTurnQuestion(product.name, entry.quantity))) return;
    setBusy(leaveButton, true);
    try {
      const ended = await leaveWaitlist(entry.id);
      left = ended.status === "cancelled";
      clearAlert(notice);
      apply(ended);
      status.focus();
    } catch (error) {
      showAlert(notice, describeError(error));
      poll();
    } finally {
      setBusy(leaveButton, false);
      render();
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && isOpen()) poll();
  });

  render();
  // Nothing to read for a product in stock that the shopper does not wait for.
  if (soldOut || entry) poll();

  return {
    setAvailable(available) {
      const now = available <= 0;
      if (now === soldOut) return;
      soldOut = now;
      render();
    },
  };
}
