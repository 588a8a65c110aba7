// Post-mortem editor: warn before leaving with edits not yet saved.
// The form (#pm-form) saves itself with htmx (Save button and autosave); the server answers a save that
// went through with the event "pm:saved". An edit made while a save was on its way stays unsaved.
(function () {
  var form = document.getElementById("pm-form");
  if (!form) return;
  var edits = 0; // edits typed so far
  var savedUpTo = 0; // edits covered by the last save that went through
  var sending = []; // edits covered by each save on its way, oldest first

  function dirty() { return edits > savedUpTo; }
  function publish() {
    // Read by the browser tests: is the unload warning armed?
    window.fbPostmortemDirty = dirty();
    form.classList.toggle("pm-dirty", dirty());
  }

  form.addEventListener("input", function () { edits += 1; publish(); });
  form.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.elt === form) sending.push(edits);
  });
  form.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt !== form) return;
    var covered = sending.shift();
    if (e.detail.successful && e.detail.xhr && e.detail.xhr.getResponseHeader("HX-Trigger")) {
      var trigger = e.detail.xhr.getResponseHeader("HX-Trigger");
      if (trigger.indexOf("pm:saved") !== -1 && covered !== undefined && covered > savedUpTo) savedUpTo = covered;
    }
    publish();
  });
  window.addEventListener("beforeunload", function (e) {
    if (!dirty()) return undefined;
    e.preventDefault();
    e.returnValue = ""; // older browsers need it set to show the prompt
    return "";
  });
  publish();
})();
