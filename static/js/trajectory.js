// The trajectory viewer: opens at the end of the run, walks back with k / forward with j,
// folds subtrees (x), flags the step under the cursor (f), searches (/).
// Every step's text came from an agent and is untrusted: this file reads and writes
// textContent and attributes only, never innerHTML.
(function () {
  "use strict";

  // htmx re-runs this script when it restores the page from its history cache: the listeners are
  // installed once, the cursor is placed again.
  if (window.fbTrajectory) { window.fbTrajectory.init(); return; }

  var cursor = null;
  var pending = null; // what the htmx request in flight will change: {kind, ...}
  var settleQueued = false;
  var revealObserver = null;

  function stepList() { return document.getElementById("steps"); }
  function trajectory() { return document.getElementById("trajectory"); }
  function flagForm() { return document.getElementById("flag-form"); }

  function allSteps() {
    var list = stepList();
    return list ? Array.prototype.slice.call(list.querySelectorAll(":scope > li.step")) : [];
  }
  function visibleSteps() { return allSteps().filter(function (s) { return !s.hidden; }); }
  function depth(step) { return parseInt(step.getAttribute("data-depth"), 10) || 0; }

  function barBottom() {
    var bar = document.querySelector(".traj-bar");
    return bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0;
  }

  function reveal(step, block) {
    if (block) { step.scrollIntoView({ block: block }); return; }
    var r = step.getBoundingClientRect();
    var top = barBottom();
    var h = window.innerHeight;
    if (r.top >= top && r.bottom <= h) return;
    // Tall steps and steps above the view are read from their top; the others come up from below.
    step.scrollIntoView({ block: r.height > h - top || r.top < top ? "start" : "end" });
  }

  function typingIn(el) {
    return !!(el && el.closest && el.closest("input, textarea, select, [contenteditable]"));
  }

  function setCursor(step, opts) {
    opts = opts || {};
    if (!step) return;
    if (cursor && cursor !== step) {
      cursor.classList.remove("is-cursor");
      cursor.removeAttribute("aria-current");
    }
    cursor = step;
    step.classList.add("is-cursor");
    step.setAttribute("aria-current", "step");
    // Never pull the focus out of a field the responder is typing in (a search, a flag note).
    if (!typingIn(document.activeElement)) step.focus({ preventScroll: true });
    if (opts.scroll !== false) reveal(step, opts.block);
  }

  function currentCursor() {
    // The cursor may have been swapped out (search, reload of a fragment).
    if (cursor && document.body.contains(cursor) && !cursor.hidden) return cursor;
    return null;
  }

  function control(selector) {
    var list = stepList();
    return list ? list.querySelector(":scope > li." + selector + " a") : null;
  }

  function move(delta) {
    var steps = visibleSteps();
    if (!steps.length) return;
    var at = currentCursor();
    var i = at ? steps.indexOf(at) : -1;
    if (i === -1) { setCursor(steps[steps.length - 1]); return; }
    var j = i + delta;
    if (j < 0) {
      var earlier = control("load-earlier");
      if (earlier) { pending = { kind: "earlier", moveUp: true }; htmx.trigger(earlier, "fb:reveal"); }
      return;
    }
    if (j >= steps.length) {
      var later = control("load-later");
      if (later) { pending = { kind: "later", moveDown: true }; htmx.trigger(later, "click"); }
      return;
    }
    setCursor(steps[j]);
  }

  // --- folding -----------------------------------------------------------------------------
  function subtree(step) {
    var d = depth(step);
    var out = [];
    for (var n = step.nextElementSibling; n && n.classList.contains("step") && depth(n) > d; n = n.nextElementSibling) {
      out.push(n);
    }
    return out;
  }

  // --- runs of identical steps: the first shows "×N identical", the others wait hidden -------
  function groupMembers(head) {
    var list = stepList();
    if (!list || !head) return [];
    var id = head.getAttribute("data-span");
    return Array.prototype.filter.call(list.querySelectorAll(":scope > li.step[data-collapsed-in]"), function (s) {
      return s.getAttribute("data-collapsed-in") === id;
    });
  }

  function groupOpen(member) {
    var head = document.getElementById("step-" + member.getAttribute("data-collapsed-in"));
    var button = head && head.querySelector(":scope > .step-head > .repeat-toggle");
    return !button || button.getAttribute("aria-expanded") === "true";
  }

  function toggleGroup(head, open) {
    var button = head && head.querySelector(":scope > .step-head > .repeat-toggle");
    if (!button) return false;
    var opening = open === undefined ? button.getAttribute("aria-expanded") !== "true" : open;
    var members = groupMembers(head);
    button.setAttribute("aria-expanded", opening ? "true" : "false");
    button.textContent = "×" + (members.length + 1) + " identical " + (opening ? "▾" : "▸");
    members.forEach(function (m) { m.hidden = !opening; });
    return true;
  }

  function expandToShow(step) {
    if (step && step.hidden && step.hasAttribute("data-collapsed-in")) {
      toggleGroup(document.getElementById("step-" + step.getAttribute("data-collapsed-in")), true);
    }
  }

  function toggleFold(step) {
    var button = step && step.querySelector(":scope > .step-head > .fold");
    if (!button) { toggleGroup(step); return; }
    var folding = button.getAttribute("aria-expanded") === "true";
    var kids = subtree(step);
    button.setAttribute("aria-expanded", folding ? "false" : "true");
    button.textContent = folding ? "▸" : "▾";
    step.classList.toggle("is-folded", folding);
    var note = step.querySelector(":scope > .step-head > .fold-note");
    if (folding) {
      kids.forEach(function (k) { k.hidden = true; });
      if (!note) {
        note = document.createElement("span");
        note.className = "fold-note";
        button.after(note);
      }
      note.textContent = kids.length + " folded";
    } else {
      if (note) note.remove();
      var skipBelow = null; // descendants of a child that is itself folded stay hidden
      kids.forEach(function (k) {
        var d = depth(k);
        if (skipBelow !== null && d > skipBelow) return;
        skipBelow = null;
        if (k.hasAttribute("data-collapsed-in") && !groupOpen(k)) return; // still in its closed run
        k.hidden = false;
        if (k.classList.contains("is-folded")) skipBelow = d;
      });
    }
  }

  // --- flagging ----------------------------------------------------------------------------
  function openFlag(step) {
    var form = flagForm();
    if (!form || !step) return;
    form.querySelector("input[name=span_id]").value = step.getAttribute("data-span");
    form.querySelector(".flag-form-step").textContent = "step #" + step.getAttribute("data-pos");
    form.hidden = false;
    step.appendChild(form);
    var note = form.querySelector("input[name=note]");
    note.focus();
    form.scrollIntoView({ block: "nearest" });
  }

  function closeFlag() {
    var form = flagForm();
    if (form && !form.hidden) {
      form.hidden = true;
      var at = currentCursor();
      if (at) at.focus({ preventScroll: true });
      return true;
    }
    return false;
  }

  function parkFlagForm() {
    // Keep the form out of the step list before the list is replaced (a search).
    var form = flagForm();
    var home = document.querySelector(".trajectory-section");
    var list = trajectory();
    if (form && home && list && list.contains(form)) {
      form.hidden = true;
      home.appendChild(form);
    }
  }

  // --- opening at the end ------------------------------------------------------------------
  function placeCursor(initial) {
    var traj = trajectory();
    if (!traj) return;
    var steps = visibleSteps();
    if (!steps.length) return;
    var hash = initial && window.location.hash.slice(1);
    var target = hash && hash.indexOf("step-") === 0 ? document.getElementById(hash) : null;
    // ?at=<span id> (an alert's link) opens the window around that step: it is the one to show.
    var at = initial && !target ? new URLSearchParams(window.location.search).get("at") : null;
    if (at) target = document.getElementById("step-" + at);
    expandToShow(target);
    if (target && target.classList.contains("step")) { setCursor(target, { block: "center" }); return; }
    var mode = traj.getAttribute("data-mode");
    if (mode === "search" || mode === "window") {
      setCursor(steps[0], { scroll: false });
      traj.scrollIntoView({ block: "start" });
      return;
    }
    // The run opens at its end: the last step, with the last five tool calls above it.
    setCursor(steps[steps.length - 1], { scroll: false });
    var list = stepList();
    (list.lastElementChild || steps[steps.length - 1]).scrollIntoView({ block: "end" });
  }

  function observeEarlier() {
    if (!("IntersectionObserver" in window)) return;
    if (!revealObserver) {
      revealObserver = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (!entry.isIntersecting) return;
          revealObserver.unobserve(entry.target);
          var link = entry.target.querySelector("a");
          if (link && document.body.contains(link) && !pending) {
            pending = { kind: "earlier" };
            htmx.trigger(link, "fb:reveal");
          }
        });
      }, { rootMargin: "300px 0px 0px 0px" });
    }
    var ctl = document.querySelector("#steps > li.load-earlier");
    if (ctl) revealObserver.observe(ctl);
  }

  // --- htmx: keep the place while fragments arrive -------------------------------------------
  function atBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 60;
  }

  document.body.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (!elt || !elt.closest) return;
    if (elt.closest("li.load-earlier")) {
      var anchor = currentCursor() || visibleSteps()[0];
      pending = Object.assign(pending && pending.kind === "earlier" ? pending : { kind: "earlier" }, {
        anchor: anchor, anchorTop: anchor ? anchor.getBoundingClientRect().top : 0,
      });
    } else if (elt.closest("li.load-later")) {
      pending = pending && pending.kind === "later" ? pending : { kind: "later" };
    } else if (elt.id === "poller") {
      var steps = visibleSteps();
      pending = { kind: "poll", follow: atBottom(), wasLast: currentCursor() === steps[steps.length - 1] };
    } else if (elt.id === "flag-form") {
      pending = { kind: "flag" };
    } else if (elt.closest(".traj-search") || elt.hasAttribute("data-clear-search")) {
      parkFlagForm();
      pending = { kind: "search" };
    }
  });

  document.body.addEventListener("htmx:beforeSwap", function (e) {
    // The flag form answers 422 with its errors: show them in place.
    if (e.detail.xhr.status === 422 && e.detail.target && e.detail.target.id === "flag-form") {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });

  function afterFragment() {
    settleQueued = false;
    var done = pending;
    pending = null;
    if (!done) return;
    if (done.kind === "earlier") {
      if (done.anchor && document.body.contains(done.anchor)) {
        window.scrollBy(0, done.anchor.getBoundingClientRect().top - done.anchorTop);
      }
      if (done.moveUp) move(-1);
      observeEarlier();
    } else if (done.kind === "later") {
      if (done.moveDown) move(1);
    } else if (done.kind === "poll") {
      var steps = visibleSteps();
      if (done.wasLast && steps.length) setCursor(steps[steps.length - 1], { scroll: false });
      if (done.follow) {
        var list = stepList();
        if (list && list.lastElementChild) list.lastElementChild.scrollIntoView({ block: "end" });
      }
    } else if (done.kind === "flag") {
      var form = flagForm();
      var at = currentCursor();
      if (form && !form.hidden) {
        var note = form.querySelector("input[name=note]");
        if (note) note.focus();
      } else if (at) {
        at.focus({ preventScroll: true });
      }
    } else if (done.kind === "search") {
      cursor = null;
      placeCursor(false);
      window.requestAnimationFrame(observeEarlier);
    }
  }

  document.body.addEventListener("htmx:afterSettle", function () {
    if (!settleQueued) {
      settleQueued = true;
      setTimeout(afterFragment, 0);
    }
  });

  document.body.addEventListener("htmx:responseError", function () { pending = null; });
  document.body.addEventListener("htmx:sendError", function () { pending = null; });

  // --- mouse -------------------------------------------------------------------------------
  document.addEventListener("click", function (e) {
    var fold = e.target.closest(".fold");
    if (fold) { toggleFold(fold.closest("li.step")); return; }
    var repeat = e.target.closest(".repeat-toggle");
    if (repeat) { toggleGroup(repeat.closest("li.step")); return; }
    var flagLink = e.target.closest("a.flag-link");
    if (flagLink && flagForm()) {
      e.preventDefault();
      var step = flagLink.closest("li.step");
      setCursor(step, { scroll: false });
      openFlag(step);
      return;
    }
    if (e.target.closest("[data-flag-cancel]")) { closeFlag(); return; }
    var stepLink = e.target.closest("a[data-step-link]");
    if (stepLink) {
      var linked = document.getElementById("step-" + stepLink.getAttribute("data-step-link"));
      expandToShow(linked);
      if (linked && !linked.hidden) { e.preventDefault(); setCursor(linked, { block: "center" }); }
      return;
    }
    if (e.target.closest("a, button, input, summary, form")) return;
    var clicked = e.target.closest("#steps > li.step");
    var selection = window.getSelection();
    if (clicked && (!selection || selection.isCollapsed)) setCursor(clicked, { scroll: false });
  });

  // --- keyboard ----------------------------------------------------------------------------
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typingIn(e.target)) {
      if (e.key === "Escape") {
        if (!closeFlag()) {
          e.target.blur();
          var at = currentCursor();
          if (at) at.focus({ preventScroll: true });
        }
      }
      return;
    }
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "x": toggleFold(currentCursor()); break;
      case "f":
        if (!flagForm()) return;
        if (!currentCursor()) move(0);
        openFlag(currentCursor());
        break;
      case "/": {
        var search = document.getElementById("trace-q");
        if (!search) return;
        search.focus();
        search.select();
        break;
      }
      case "Escape": closeFlag(); break;
      default: return;
    }
    e.preventDefault();
  });

  function init() {
    cursor = null;
    pending = null;
    placeCursor(true);
    window.requestAnimationFrame(observeEarlier);
  }

  window.fbTrajectory = { init: init };
  // Open at the end before htmx looks at what is on screen.
  if ("scrollRestoration" in history) history.scrollRestoration = "manual";
  init();
})();
