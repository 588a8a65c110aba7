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
