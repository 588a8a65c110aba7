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

// Copy buttons: <button data-copy-from="id"> copies that field's text (the new-key box on /keys/).
(function () {
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-copy-from]") : null;
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy-from"));
    if (!field) return;
    field.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });
})();

// Filter panels (<details data-fold-narrow open>): open on wide screens (their summary is hidden
// there), folded on a phone unless a filter is set, so the results are on the first screen.
(function () {
  if (!window.matchMedia || !window.matchMedia("(max-width: 720px)").matches) return;
  document.querySelectorAll("details[data-fold-narrow]:not([data-set])").forEach(function (d) {
    d.removeAttribute("open");
  });
})();
