/* My pushes: copy a push's prepared text in one click (issue 13). Without JS the text stays in its readonly
   textarea to select by hand; the button is shown only when the page can copy. */
(function () {
  "use strict";

  function reveal() {
    document.querySelectorAll("button[data-copy-text][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("button[data-copy-text]") : null;
    if (!button) return;
    var area = document.querySelector(button.dataset.copyText);
    if (!area) return;
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    var done = function () {
      button.textContent = button.dataset.copied;
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 4000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(area.value).then(done, function () {
        area.select(); document.execCommand("copy"); done();
      });
    } else {
      area.select();
      document.execCommand("copy");
      done();
    }
  });

  reveal();
  document.addEventListener("htmx:afterSettle", reveal);
})();
