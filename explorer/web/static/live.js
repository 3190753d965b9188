// Live updates: on each new block, set #height and refresh the sections
// marked data-live with the same sections of a fresh copy of the page.
(function () {
  "use strict";
  if (!window.EventSource || !document.getElementById("height")) return;
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) el.replaceWith(document.adoptNode(fresh));
        });
      })
      .catch(function () {})
      .finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  new EventSource("/events").addEventListener("block", function (e) {
    var h = String(JSON.parse(e.data).height), el = document.getElementById("height");
    if (!el || el.textContent === h) return;
    el.textContent = h;
    refresh();
  });
})();
