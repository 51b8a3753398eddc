// API error codes (API.md) in words a shopper understands.

import { shortageText } from "./ui.js";

const FIELD_WORDS = {
  shipping_address: "a delivery address",
  billing_address: "a billing address",
  payment_method: "a payment method",
  shipping_method_id: "a delivery method",
};

/** `names` maps sku → product name so stock problems name the product, not its code. */
export function describeError(error, { names = {} } = {}) {
  const details = error.details || {};
  switch (error.code) {
    case "INSUFFICIENT_STOCK": {
      const items = details.items || [];
      return {
        code: error.code,
        title:
          items.length === 1
            ? "One item is not available in the quantity you want"
            : "Some items are not available in the quantities you want",
        lines: items.map((item) =>
          shortageText(names[item.sku] || item.sku, item.available, item.requested),
        ),
        hint: "Remove these items or lower their quantity in your cart, then try again.",
      };
    }
    case "PAYMENT_DECLINED":
      return {
        code: error.code,
        title: "Your payment was declined",
        text: "The card issuer declined the payment, so you have not been charged and no order was placed.",
        hint: "Choose another payment method and place your order again.",
      };
    case "PAYMENT_CAPTURE_FAILED":
      return {
        code: error.code,
        title: "We could not complete your payment",
        text: "The payment was approved but could not be collected, so we cancelled it. You have not been charged and no order was placed.",
        hint: "Please try again, or choose another payment method.",
      };
    case "PAYMENT_TIMEOUT":
      return {
        code: error.code,
        title: "The payment service did not respond",
        text: "We did not hear back from the payment service in time, so no order was placed.",
        hint: "Please try again in a moment, or choose another payment method.",
      };
    case "PAYMENT_UNAVAILABLE":
      return {
        code: error.code,
        title: "Payments are unavailable at the moment",
        text: "Our payment service is not responding, so we did not try to charge you. Your items are still held for you.",
        hint: retryAfterText(details.retry_after_seconds),
      };
    case "CHECKOUT_EXPIRED":
      return {
        code: error.code,
        title: "Your checkout has expired",
        text: "We held your items for a limited time and that time ran out, so they have been released for other shoppers.",
        hint: "Start checkout again to hold them for you once more. Your details are kept.",
      };
    case "CART_EMPTY":
      return {
        code: error.code,
        title: "Your cart is empty",
        text: "Add something to your cart before checking out.",
      };
    case "MISSING_CHECKOUT_DATA":
      return {
        code: error.code,
        title: "Some details are missing",
        lines: (details.missing || []).map((field) => `Please add ${FIELD_WORDS[field] || field}.`),
      };
    case "VALIDATION_ERROR":
      return {
        code: error.code,
        title: "Please check your details",
        text: "Some of the details you entered are not valid. The fields that need attention are marked.",
      };
    case "INVALID_CART_STATUS":
      if (details.status === "checkout" && details.retry_after_seconds) {
        // API.md v1.1: an earlier attempt to pay is still in flight.
        return {
          code: "PAYMENT_BEING_CHECKED",
          title: "Your payment is being checked",
          text: "An earlier attempt to pay for this order has not finished yet. We are checking it with the payment provider: if it went through, you get your order; if not, you can pay now. You will not be charged twice.",
          hint: paymentCheckText(details.retry_after_seconds),
        };
      }
      if (details.status === "checkout") {
        return {
          code: error.code,
          title: "Your checkout is in progress",
          text: "Your cart cannot be changed while checkout is open. Go to checkout to finish, or go back to your cart to change it.",
        };
      }
      if (details.status === "completed") {
        return {
          code: error.code,
          title: "This cart has already been ordered",
          text: "Start a new cart from the products page.",
        };
      }
      return {
        code: error.code,
        title: "This cannot be done right now",
        text: "Your cart is not in a state that allows this. Reload the page and try again.",
      };
    case "STOCK_AVAILABLE":
      return {
        code: error.code,
        title: "It is in stock now",
        text: "There is no need to wait: add it to your cart instead.",
      };
    case "WAITLIST_ENTRY_NOT_FOUND":
      return {
        code: error.code,
        title: "We could not find your place in line",
        text: "It may have ended already. Reload the page to see where you are.",
      };
    case "CART_NOT_FOUND":
      return {
        code: error.code,
        title: "We could not find your cart",
        text: "It may have been removed. Add products to start a new cart.",
      };
    case "ORDER_NOT_FOUND":
      return {
        code: error.code,
        title: "We could not find this order",
        text: "Orders can be viewed on the device they were placed from.",
      };
    case "NETWORK_ERROR":
      return {
        code: error.code,
        title: "We could not reach the shop",
        text: "Check your internet connection and try again.",
      };
    default:
      return {
        code: error.code,
        title: "Something went wrong",
        text: error.status >= 500 ? "The shop had a problem. Please try again in a moment." : error.message,
      };
  }
}

/** "You can place your order again in N s." while an earlier payment is checked. */
export function paymentCheckText(seconds) {
  const left = Math.max(0, Math.ceil(Number(seconds) || 0));
  return left > 0 ? `You can place your order again in ${left} s.` : "You can place your order again now.";
}

function itemsText(quantity) {
  const n = Number(quantity) || 0;
  return `${n} item${n === 1 ? "" : "s"}`;
}

/** The question asked before a line is removed while its items are held. */
export function releaseHoldQuestion(name, quantity) {
  return `Remove ${name} from your order? We are holding ${itemsText(quantity)} for you; they will be released and other shoppers may buy them.`;
}

/** What happened after a held line was removed. */
export function holdReleasedText(name, quantity) {
  return `Removed ${name}. Your hold on ${itemsText(quantity)} was released.`;
}

/** "Payments are unavailable, try again in N s." while N > 0. */
export function retryAfterText(seconds) {
  const left = Math.max(0, Math.ceil(Number(seconds) || 0));
  return left > 0 ? `Payments are unavailable, try again in ${left} s.` : "You can try again now.";
}

/** The question asked before a shopper gives up a turn that holds items for them. */
export function giveUpTurnQuestion(name, quantity) {
  return `Give up your turn for ${name}? We are holding ${itemsText(quantity)} for you because it was your turn in line; they will go to the next shopper.`;
}

export const PAYMENT_FAILURES = new Set(["PAYMENT_DECLINED", "PAYMENT_CAPTURE_FAILED", "PAYMENT_TIMEOUT"]);
