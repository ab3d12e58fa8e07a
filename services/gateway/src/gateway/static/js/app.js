/* Zabota staff pages: the few behaviours htmx does not cover. Hand-written, no build step. */
(function () {
  "use strict";

  // Live countdown to a due time: <time data-countdown datetime="ISO" data-left=".." data-overdue="..">.
  function formatSpan(ms, el) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    var parts = [];
    if (days) parts.push(days + " " + el.dataset.d);
    if (days || hours) parts.push(hours + " " + el.dataset.h);
    parts.push(mins + " " + el.dataset.m);
    return parts.join(" ");
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      var left = due - now;
      el.textContent = left >= 0 ? formatSpan(left, el) + " " + el.dataset.left
                                 : el.dataset.overdue + " " + formatSpan(left, el);
      el.classList.toggle("late", left < 0);
      if (el.dataset.target) {   // EN-3: amber from 80 % of the target, red past it
        el.classList.toggle("sla-amber", left >= 0 && left <= el.dataset.target * 200);
        el.classList.toggle("sla-red", left < 0);
      }
      var row = el.closest("tr");
      if (row) row.classList.toggle("overdue", left < 0);
    });
  }
  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSettle", tick);

  // Upload progress: a form with data-progress shows htmx's xhr progress in its <progress>.
  document.addEventListener("htmx:xhr:progress", function (evt) {
    var form = evt.target.closest ? evt.target.closest("form[data-progress]") : null;
    if (!form || !evt.detail.lengthComputable) return;
    var bar = form.querySelector("progress");
    bar.hidden = false;
    bar.value = Math.round(evt.detail.loaded / evt.detail.total * 100);
  });

  // Copy a link to the clipboard: <button data-copy="#input-id" data-copied="Copied">.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("button[data-copy]") : null;
    if (!button) return;
    var input = document.querySelector(button.dataset.copy);
    input.select();
    var done = function () { button.textContent = button.dataset.copied; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done);
    else { document.execCommand("copy"); done(); }
  });

  // Print buttons on print views.
  document.addEventListener("click", function (evt) {
    if (evt.target.closest && evt.target.closest("[data-print]")) window.print();
  });
})();
