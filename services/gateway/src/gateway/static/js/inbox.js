/* The care inbox (issue 11): live updates and keyboard shortcuts. No inline script (CSP: script-src 'self').

   Live updates: an EventSource on the gateway's /inbox/stream; on `changed` the open list is re-read with htmx
   (its current filters), and the open conversation's thread if it is among the changed ones. The composer is
   not re-rendered, so what the agent is typing stays.
   Keys (not while typing in a field): j / k move in the list, Enter or o opens, r focuses the answer,
   e resolves, t focuses the template picker; choosing a template puts its text (variables filled by the
   server) into the answer. */
(function () {
  "use strict";
  var source = null;
  var selected = -1;

  function listBox() { return document.getElementById("inbox"); }
  function conversationBox() { return document.getElementById("conversation"); }

  function refreshList(box) {
    var url = window.location.pathname === "/inbox" ? window.location.pathname + window.location.search
      : box.dataset.listUrl;
    var keep = currentRowId();
    window.htmx.ajax("GET", url, { target: "#inbox", swap: "outerHTML" }).then(function () {
      if (keep) selectById(keep);
    });
  }

  function refreshThread(box) {
    window.htmx.ajax("GET", box.dataset.threadUrl, { target: "#thread", swap: "outerHTML" });
  }

  function connect() {
    var box = listBox() || conversationBox();
    if (!box || !box.dataset.stream || !window.EventSource || source) return;
    source = new EventSource(box.dataset.stream);
    source.addEventListener("changed", function (evt) {
      var ids = [];
      try { ids = JSON.parse(evt.data).ids || []; } catch (e) { ids = []; }
      var list = listBox();
      if (list) refreshList(list);
      var conv = conversationBox();
      if (conv && ids.indexOf(conv.dataset.id) !== -1) refreshThread(conv);
    });
    source.addEventListener("ready", function () { document.body.dataset.inboxLive = "1"; });
    source.addEventListener("error", function () {
      // A refused stream (the inbox service is down: 503) is not retried by the browser itself.
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        document.body.dataset.inboxLive = "";
        window.setTimeout(connect, 5000);
      }
    });
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#inbox-list .inbox-row")); }
  function currentRowId() {
    var r = rows()[selected];
    return r ? r.dataset.id : null;
  }
  function select(index) {
    var all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (r, i) { r.classList.toggle("selected", i === selected); });
    all[selected].scrollIntoView({ block: "nearest" });
    var link = all[selected].querySelector("a.inbox-open");
    if (link) link.focus({ preventScroll: true });
  }
  function selectById(id) {
    var all = rows();
    for (var i = 0; i < all.length; i++) if (all[i].dataset.id === id) { select(i); return; }
  }

  function typing(evt) {
    var t = evt.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey || typing(evt)) return;
    var key = evt.key;
    if (listBox() && (key === "j" || key === "k")) {
      evt.preventDefault();
      select(selected < 0 ? 0 : selected + (key === "j" ? 1 : -1));
    } else if (listBox() && (key === "Enter" || key === "o") && rows()[selected]) {
      evt.preventDefault();
      window.location.href = rows()[selected].dataset.href;
    } else if (key === "r") {
      var text = document.getElementById("reply-text");
      if (text) { evt.preventDefault(); text.focus(); }
      else if (listBox() && rows()[selected]) { window.location.href = rows()[selected].dataset.href + "#reply-text"; }
    } else if (key === "e") {
      var resolve = document.getElementById("resolve-form");
      if (resolve) { evt.preventDefault(); if (resolve.requestSubmit) resolve.requestSubmit(); else resolve.submit(); }
    } else if (key === "t") {
      var picker = document.getElementById("template-picker");
      if (picker) { evt.preventDefault(); picker.focus(); }
    }
  });

  document.addEventListener("change", function (evt) {
    if (!evt.target || evt.target.id !== "template-picker") return;
    var option = evt.target.selectedOptions[0];
    var text = document.getElementById("reply-text");
    if (!option || !text || !option.dataset.text) return;
    var at = text.selectionStart || text.value.length;
    text.value = text.value.slice(0, at) + option.dataset.text + text.value.slice(at);
    text.focus();
  });

  // An action on the conversation re-renders it; its answer may have been read just before the sender marked
  // the reply sent (and that change's event already came): read the thread once more after the swap.
  document.addEventListener("htmx:afterSettle", function (evt) {
    var conv = conversationBox();
    var verb = evt.detail && evt.detail.requestConfig && evt.detail.requestConfig.verb;
    if (conv && verb === "post") refreshThread(conv);
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", connect);
  else connect();
  window.addEventListener("pagehide", function () { if (source) { source.close(); source = null; } });
})();
