// The print page's "Print" link (no inline handlers: the CSP allows scripts from files and nonces only).
document.addEventListener("click", function (e) {
  var link = e.target.closest("[data-print]");
  if (!link) return;
  e.preventDefault();
  window.print();
});
