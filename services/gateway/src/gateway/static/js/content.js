/* Content calendar: drag an item to another day. The drop fills the calendar's move form (item, day)
   and submits it, so htmx posts it with the CSRF token like any form (no inline script, CSP-safe).
   Without JS each item has a "Move" form with a date field. */
(function () {
  "use strict";
  var dragged = null;

  document.addEventListener("dragstart", function (evt) {
    var item = evt.target.closest ? evt.target.closest(".cal-item[draggable=true]") : null;
    if (!item) return;
    dragged = item.dataset.item;
    evt.dataTransfer.effectAllowed = "move";
    evt.dataTransfer.setData("text/plain", dragged);
    item.classList.add("dragging");
  });

  document.addEventListener("dragend", function (evt) {
    var item = evt.target.closest ? evt.target.closest(".cal-item") : null;
    if (item) item.classList.remove("dragging");
    document.querySelectorAll(".cal-day.drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
  });

  document.addEventListener("dragover", function (evt) {
    var day = evt.target.closest ? evt.target.closest(".cal-day[data-day]") : null;
    if (!day || !dragged) return;
    evt.preventDefault();
    evt.dataTransfer.dropEffect = "move";
    day.classList.add("drop-target");
  });

  document.addEventListener("dragleave", function (evt) {
    var day = evt.target.closest ? evt.target.closest(".cal-day[data-day]") : null;
    if (day && !day.contains(evt.relatedTarget)) day.classList.remove("drop-target");
  });

  document.addEventListener("drop", function (evt) {
    var day = evt.target.closest ? evt.target.closest(".cal-day[data-day]") : null;
    var form = document.getElementById("move-form");
    if (!day || !form) return;
    evt.preventDefault();
    var itemId = evt.dataTransfer.getData("text/plain") || dragged;
    dragged = null;
    if (!itemId) return;
    var current = document.getElementById("item-" + itemId);
    if (current && current.closest(".cal-day") === day) return;
    form.elements["item_id"].value = itemId;
    form.elements["date"].value = day.dataset.day;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });
})();
