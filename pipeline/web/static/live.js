// Optional live updates (the pages work without this): new log lines, and an action's progress.
(function () {
  "use strict";
  function esc(s) { var d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }
  var log = document.getElementById("log"), live = document.getElementById("live");
  if (log && live) {
    var newest = parseInt(log.dataset.newest || "0", 10);
    setInterval(function () {
      if (!live.checked) return;
      var params = new URLSearchParams(new FormData(document.getElementById("log-filters")));
      params.set("after", newest);
      fetch("/log.json?" + params.toString(), { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (events) {
        var header = log.rows[0];
        events.forEach(function (e) {
          newest = Math.max(newest, e.id);
          var tr = document.createElement("tr");
          tr.className = "level-" + e.level;
          tr.innerHTML = "<td class='ts'>" + esc(e.local) + "</td><td>" + esc(e.level) + "</td><td>" + esc(e.stage) + "</td><td>" + esc(e.message) +
            "</td><td>" + esc(e.order_id || e.product_id || "") + "</td><td>" + esc(e.run_id) + "</td>";
          header.parentNode.insertBefore(tr, header.nextSibling);
        });
      });
    }, 2000);
  }
  var state = document.getElementById("action-state");
  if (state && state.dataset.running === "1") { setTimeout(function () { location.reload(); }, 1500); }
})();
