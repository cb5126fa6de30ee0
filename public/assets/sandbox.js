// The sandbox provider's checkout page: Pay or Decline sends a signed webhook to the app.
const root = document.getElementById("sandbox");
const id = root.dataset.paymentId;
const result = document.getElementById("result");

async function decide(action) {
  for (const b of document.querySelectorAll("button")) b.disabled = true;
  const res = await fetch(`/sandbox/checkout/${encodeURIComponent(id)}/${action}`, { method: "POST" });
  const data = await res.json();
  document.getElementById("status").textContent = data.status ?? data.code;
  result.textContent = res.ok ? `Payment ${data.status.toLowerCase().replace("_", " ")}.` : data.detail;
}
document.getElementById("pay").addEventListener("click", () => decide("pay"));
document.getElementById("decline").addEventListener("click", () => decide("decline"));
