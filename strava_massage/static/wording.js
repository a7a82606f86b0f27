// The wording editor's live preview: a moment after the clinic stops typing, ask the server for
// the sample runner's note with this wording (the same check a save makes) and show it, or why
// it would be refused. Text goes in with textContent only: a wording is never read as markup.
// Without JavaScript the Preview button does the same with a page load.
(function () {
  "use strict";
  var WAIT_MS = 400;

  function show(box, className, text) {
    var element = document.createElement(className === "note" ? "pre" : "p");
    if (className !== "note") element.className = className;
    element.textContent = text;
    box.replaceChildren(element);
  }

  function watch(area) {
    var box = document.getElementById(area.getAttribute("data-preview"));
    var token = area.form.querySelector("input[name=csrf_token]");
    if (!box || !token) return;
    var timer = null;
    var asked = 0;

    function ask() {
      var mine = ++asked;
      fetch(area.getAttribute("data-preview-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": token.value
        },
        body: JSON.stringify({
          kind: area.getAttribute("data-kind"),
          source: area.value,
          units: area.getAttribute("data-units")
        })
      })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          if (mine !== asked) return; // a later keystroke's answer is on its way
          if (typeof answer.note === "string") show(box, "note", answer.note);
          else if (typeof answer.refused === "string") show(box, "refused", answer.refused);
          else if (typeof answer.error === "string") show(box, "refused", answer.error);
          else throw new Error("unexpected answer");
        })
        .catch(function () {
          if (mine === asked) show(box, "refused", box.getAttribute("data-unavailable"));
        });
    }

    area.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, WAIT_MS);
    });
  }

  document.querySelectorAll("textarea[data-preview-url]").forEach(watch);
})();
