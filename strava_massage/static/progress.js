// While the history import runs, poll its progress and update the status line; reload the page
// once it is done so the totals include the imported runs. Without JavaScript the link works.
(function () {
  var box = document.querySelector("[data-progress-url]");
  if (!box) return;
  var count = box.querySelector("[data-progress-count]");
  function poll() {
    fetch(box.getAttribute("data-progress-url"), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) return setTimeout(poll, 5000);
        if (count) count.textContent = state.runs_text;
        if (state.status === "pending" || state.status === "running") setTimeout(poll, 2000);
        else window.location.reload();
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
