// Declare form: choosing a failure class suggests its default severity,
// unless the responder already picked a severity by hand.
(function () {
  "use strict";
  var form = document.getElementById("declare-form");
  if (!form) return;
  var touched = false;
  form.querySelectorAll('input[name="severity"]').forEach(function (input) {
    input.addEventListener("change", function () { touched = true; });
  });
  form.querySelectorAll('input[name="failure_class"]').forEach(function (input) {
    input.addEventListener("change", function () {
      var sev = input.getAttribute("data-default-severity");
      if (!sev || touched) return;
      var target = form.querySelector('input[name="severity"][value="' + sev + '"]');
      if (target) target.checked = true;
    });
  });
})();
