// Declare form: choosing a failure class suggests its default severity. The suggestion never
// overrides a severity the responder picked by hand, and never lowers one the page came with
// (declaring from an alert or a trace prefills it): it only fills an empty choice or raises it.
(function () {
  "use strict";
  var form = document.getElementById("declare-form");
  if (!form) return;
  var touched = false;
  var rank = function (sev) { return parseInt(String(sev).replace(/\D/g, ""), 10) || 99; };
  form.querySelectorAll('input[name="severity"]').forEach(function (input) {
    input.addEventListener("change", function () { touched = true; });
  });
  form.querySelectorAll('input[name="failure_class"]').forEach(function (input) {
    input.addEventListener("change", function () {
      var sev = input.getAttribute("data-default-severity");
      if (!sev || touched) return;
      var current = form.querySelector('input[name="severity"]:checked');
      if (current && rank(current.value) <= rank(sev)) return;  // SEV1 is the most severe
      var target = form.querySelector('input[name="severity"][value="' + sev + '"]');
      if (target) target.checked = true;
    });
  });
})();
