// Order lookup: number and email → POST orders/lookup/; the answer's token is kept for
// that order and the order page reads the order with it (X-Order-Token).

import { api, loadCart, rememberOrderLookup } from "./api.js";
import { describeError } from "./messages.js";
import { clearAlert, setBusy, showAlert, updateCartCount } from "./ui.js";

const form = document.querySelector("[data-lookup-form]");
const notice = document.querySelector("[data-notice]");
const button = form.querySelector("button[type=submit]");
form.hidden = false;

function lookupError(error) {
  if (error.code === "ORDER_NOT_FOUND") {
    return {
      code: error.code,
      title: "We could not find an order with that number and email",
      text: "Check the order number in your confirmation and use the email address you gave at checkout.",
    };
  }
  if (error.code === "THROTTLED") {
    const wait = Number(error.details.retry_after);
    return {
      code: error.code,
      title: "Too many tries",
      text: Number.isFinite(wait)
        ? `Please wait ${wait} second${wait === 1 ? "" : "s"} and try again.`
        : "Please wait a minute and try again.",
    };
  }
  if (error.code === "VALIDATION_ERROR") {
    return {
      code: error.code,
      title: "Please check what you entered",
      text: "Enter the order number and a valid email address.",
    };
  }
  return describeError(error);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearAlert(notice);
  const number = form.elements.number.value.trim();
  const email = form.elements.email.value.trim();
  if (!number || !email || !form.elements.email.checkValidity()) {
    showAlert(notice, lookupError({ code: "VALIDATION_ERROR", details: {} }));
    return;
  }
  setBusy(button, true, "Looking…");
  try {
    const order = await api("orders/lookup/", { method: "POST", body: { number, email } });
    rememberOrderLookup(order.id, order.token);
    window.location.assign(`/orders/${order.id}/`);
  } catch (error) {
    setBusy(button, false);
    showAlert(notice, lookupError(error));
  }
});

loadCart()
  .then(updateCartCount)
  .catch(() => {});
