// New-alert toasts (templates/partials/alert_toast.html). htmx polls every 10 s; this script sends
// the last alert id the page has seen as ?since= and keeps the one the server answers in X-Alert-Since.
// It never moves focus: toasts are announced politely and stay until dismissed.
(function () {
  var box = document.getElementById("alert-toast");
  if (!box || box.dataset.wired) return;
  box.dataset.wired = "1";
  box.addEventListener("htmx:configRequest", function (e) {
    if (e.target !== box) return;
    if (box.dataset.since) e.detail.parameters.since = box.dataset.since;
  });
  // A hidden tab does not poll; the cursor stays, so the next visible poll brings what was missed.
  box.addEventListener("htmx:beforeRequest", function (e) {
    if (e.target === box && document.hidden) e.preventDefault();
  });
  // Only the poll's own answer is swapped in: an expired session answers with the login page.
  box.addEventListener("htmx:beforeSwap", function (e) {
    if (e.target !== box) return;
    if (!e.detail.xhr || !e.detail.xhr.getResponseHeader("X-Alert-Since")) e.detail.shouldSwap = false;
  });
  box.addEventListener("htmx:afterRequest", function (e) {
    if (e.target !== box || !e.detail.xhr) return;
    var since = e.detail.xhr.getResponseHeader("X-Alert-Since");
    if (since && /^\d+$/.test(since)) box.dataset.since = since;
  });
  box.addEventListener("click", function (e) {
    var button = e.target.closest(".alert-toast-close");
    if (button) button.closest(".alert-toast-item").remove();
  });
  // Keep at most five toasts: the oldest go first.
  box.addEventListener("htmx:afterSwap", function () {
    var items = box.querySelectorAll(".alert-toast-item");
    for (var i = 0; i < items.length - 5; i++) items[i].remove();
  });
})();
