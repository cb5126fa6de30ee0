// The sandbox provider's checkout page: Pay or Decline sends a signed webhook to the app, then
// the buyer goes back to the order page, as from a real provider.
const root = document.getElementById("sandbox");
const id = root.dataset.paymentId;
const orderCode = root.dataset.orderCode;
const result = document.getElementById("result");

function backToOrder() {
  if (!orderCode || document.getElementById("order-link")) return;
  const link = document.createElement("a");
  link.id = "order-link";
  link.className = "button";
  link.href = `/orders/${encodeURIComponent(orderCode)}`;
  link.textContent = "See your order";
  document.querySelector(".actions").append(link);
}

async function decide(action) {
  const buttons = document.querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  result.textContent = "";
  try {
    const res = await fetch(`/sandbox/checkout/${encodeURIComponent(id)}/${action}`, { method: "POST" });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      result.textContent = data.detail ?? `The sandbox answered ${res.status}.`;
      for (const b of buttons) b.disabled = false;
      return;
    }
    document.getElementById("status").textContent = data.status;
    result.textContent =
      data.status === "ALREADY_SETTLED" ? "This payment already has a result." : `Payment ${data.status.toLowerCase()}.`;
    backToOrder();
  } catch {
    result.textContent = "The sandbox could not be reached; try again.";
    for (const b of buttons) b.disabled = false;
  }
}
document.getElementById("pay").addEventListener("click", () => decide("pay"));
document.getElementById("decline").addEventListener("click", () => decide("decline"));
