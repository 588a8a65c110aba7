// Post-mortem editor: warn before leaving with edits not yet saved.
// The form (#pm-form) saves itself with htmx (Save button and autosave); the server answers a save that
// went through with the event "pm:saved" (HX-Trigger). An edit made while a save was on its way stays
// unsaved until a later save covers it. The beforeunload listener is only registered while something is
// unsaved (an idle page keeps the back/forward cache).
(function () {
  var form = document.getElementById("pm-form");
  if (!form) return;
  var edits = 0; // edits typed so far
  var savedUpTo = 0; // edits covered by the last save that went through
  var sending = []; // edits covered by each save on its way, oldest first
  var armed = false;

  function warn(e) {
    e.preventDefault();
    e.returnValue = ""; // older browsers need it set to show the prompt
    return "";
  }

  function update() {
    var dirty = edits > savedUpTo;
    if (dirty !== armed) {
      if (dirty) window.addEventListener("beforeunload", warn);
      else window.removeEventListener("beforeunload", warn);
      armed = dirty;
    }
    window.fbPostmortemDirty = armed; // read by the browser tests
    form.classList.toggle("pm-dirty", armed);
  }

  function status(text) {
    var el = document.getElementById("pm-save-status");
    if (!el) return;
    el.textContent = text; // text, never HTML
    el.classList.add("pm-save-failed");
  }

  form.addEventListener("input", function () { edits += 1; update(); });
  form.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.elt === form) sending.push(edits);
  });
  form.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt !== form) return;
    var covered = sending.shift();
    var trigger = e.detail.xhr ? e.detail.xhr.getResponseHeader("HX-Trigger") || "" : "";
    if (e.detail.successful && trigger.indexOf("pm:saved") !== -1 && covered !== undefined && covered > savedUpTo) {
      savedUpTo = covered;
    }
    update();
  });
  form.addEventListener("htmx:sendError", function (e) {
    if (e.detail.elt === form) status("Not saved: the server could not be reached. Your text is still here.");
  });
  form.addEventListener("htmx:responseError", function (e) {
    if (e.detail.elt === form) status("Not saved: the server answered " + e.detail.xhr.status + ". Your text is still here.");
  });
  update();
})();
