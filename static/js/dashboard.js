// The dashboard's fleet refreshes every 2 s by replacing #fleet. Keep the keyboard focus where
// the responder left it: the same control by id, or, when that control is gone (the Kill button of
// an agent just killed), the first control left on the same card. Never innerHTML, ids only.
(function () {
  "use strict";
  var saved = null; // {id, card} of the focused element before the swap

  function fleetSwap(e) {
    var target = e.detail && (e.detail.target || e.detail.elt);
    return !!(target && target.id === "fleet");
  }

  document.body.addEventListener("htmx:beforeSwap", function (e) {
    if (!fleetSwap(e)) return;
    var el = document.activeElement;
    var fleet = document.getElementById("fleet");
    if (!el || !fleet || !fleet.contains(el)) { saved = null; return; }
    var card = el.closest(".fleet-card");
    saved = { id: el.id || "", card: card ? card.id : "" };
  });

  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (!fleetSwap(e) || !saved) return;
    var want = saved;
    saved = null;
    var el = want.id ? document.getElementById(want.id) : null;
    if (!el && want.card) {
      var card = document.getElementById(want.card);
      el = card ? card.querySelector(".card-actions button, .card-actions a, a.fleet-name") : null;
    }
    if (el && document.activeElement !== el) el.focus({ preventScroll: true });
  });
})();
