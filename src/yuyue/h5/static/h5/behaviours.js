/* Small page behaviours for the H5 and the console, as data attributes instead of inline scripts
   or on…= handlers, so that the Content-Security-Policy can forbid inline script entirely.
   Wired once by event delegation on the document, and for content htmx swaps in (htmx:load). */
(function () {
  "use strict";

  // A countdown to a deadline (the unpaid hold), "m:ss".
  function countdown(el) {
    var end = Date.parse(el.getAttribute("data-countdown"));
    if (isNaN(end)) { return; }
    function tick() {
      var s = Math.max(0, Math.round((end - Date.now()) / 1000));
      el.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
      if (s > 0 && el.isConnected) { setTimeout(tick, 1000); }
    }
    tick();
  }

  // Show the fieldsets of a form that belong to the picked radio value (data-scope="value").
  function scopes(form) {
    function sync() {
      var picked = form.querySelector("input[name=scope]:checked");
      form.querySelectorAll("[data-scope]").forEach(function (box) {
        box.hidden = !picked || box.getAttribute("data-scope") !== picked.value;
      });
    }
    form.querySelectorAll("input[name=scope]").forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  }

  function init(root) {
    if (!root || !root.querySelectorAll) { return; }
    function each(selector, fn) {
      var found = Array.prototype.slice.call(root.querySelectorAll(selector));
      if (root.matches && root.matches(selector)) { found.push(root); }
      found.forEach(function (el) {
        if (el.yuyueReady) { return; }
        el.yuyueReady = true;
        fn(el);
      });
    }
    each("[data-countdown]", countdown);
    // Fill bars: a width from data, set through the CSSOM (allowed without 'unsafe-inline' styles).
    each("[data-fill]", function (el) { el.style.width = Math.min(100, Number(el.getAttribute("data-fill")) || 0) + "%"; });
    each("form[data-scopes]", scopes);
  }

  // Ask before a destructive submit: <button data-confirm="Really?">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    var dismiss = event.target.closest && event.target.closest("[data-dismiss]");
    if (dismiss) {
      var box = dismiss.closest(dismiss.getAttribute("data-dismiss"));
      if (box) { box.remove(); }
    }
  });
  // Submit a filter form as soon as its select changes: <select data-autosubmit>.
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-autosubmit]") && event.target.form) {
      event.target.form.submit();
    }
  });
  // Empty a chat input once htmx has sent it: <form data-reset-after-send>.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail && event.detail.elt;
    if (form && form.matches && form.matches("form[data-reset-after-send]") && event.detail.successful) {
      form.reset();
    }
  });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
  document.addEventListener("DOMContentLoaded", function () { init(document.body); });
})();
