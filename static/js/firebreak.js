// Notices for htmx actions: views answer 204 with HX-Trigger fb:notice / fb:error.
(function () {
  function show(message, kind) {
    var box = document.getElementById("toasts");
    if (!box || !message) return;
    var el = document.createElement("div");
    el.className = "message message-" + kind;
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = message; // text, never HTML
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, kind === "error" ? 10000 : 4000);
  }
  document.body.addEventListener("fb:notice", function (e) { show(e.detail.message, "success"); });
  document.body.addEventListener("fb:error", function (e) { show(e.detail.message, "error"); });
})();
