// Live row, day and week totals while hours are typed. The server recomputes them on save; this
// only mirrors its parsing (projects/forms.py parse_duration) so the totals never lie while typing.
(function () {
  "use strict";
  var table = document.getElementById("timesheet");
  if (!table) { return; }

  // Minutes from "1.5", "1,5", "1:30", "1h30", "2h", "90m"; null for blank, NaN for anything else.
  function parseDuration(text) {
    var value = (text || "").replace(/\s+/g, "").toLowerCase();
    var match;
    if (!value) { return null; }
    if ((match = /^(\d{1,2}):(\d{2})$/.exec(value))) {
      return Number(match[2]) < 60 ? Number(match[1]) * 60 + Number(match[2]) : NaN;
    }
    if ((match = /^(\d+)(?:m|min|mins)$/.exec(value))) { return Number(match[1]); }
    if ((match = /^(\d+)h(?:(\d{1,2})(?:m|min|mins)?)?$/.exec(value))) {
      var minutes = Number(match[2] || 0);
      return minutes < 60 ? Number(match[1]) * 60 + minutes : NaN;
    }
    if ((match = /^(\d+[.,]?\d*|[.,]\d+)h?$/.exec(value))) {
      return Math.round(Number(match[1].replace(",", ".")) * 60);
    }
    return NaN;
  }

  function format(minutes) {
    var rest = minutes % 60;
    return Math.floor(minutes / 60) + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function recompute() {
    var dayTotals = [0, 0, 0, 0, 0, 0, 0];
    table.querySelectorAll("tbody tr[data-row]").forEach(function (row) {
      var rowTotal = 0;
      row.querySelectorAll("td.cell").forEach(function (cell) {
        var minutes = Number(cell.getAttribute("data-fixed")) || 0;
        var input = cell.querySelector("input");
        if (input) {
          var typed = parseDuration(input.value);
          var bad = typeof typed === "number" && isNaN(typed);
          if (bad) { input.setAttribute("aria-invalid", "true"); }
          else if (!cell.classList.contains("cell-invalid")) { input.removeAttribute("aria-invalid"); }
          if (!bad && typed) { minutes += typed; }
        }
        rowTotal += minutes;
        dayTotals[Number(cell.getAttribute("data-day"))] += minutes;
      });
      row.querySelector("[data-row-total]").textContent = format(rowTotal);
    });
    var week = 0;
    dayTotals.forEach(function (total, day) {
      var target = table.querySelector('[data-day-total="' + day + '"]');
      if (target) { target.textContent = format(total); }
      week += total;
    });
    var weekTarget = table.querySelector("[data-week-total]");
    if (weekTarget) { weekTarget.innerHTML = "<strong>" + format(week) + "</strong>"; }
  }

  // Typed hours live only in the page until "Save week": warn before leaving with unsaved changes.
  var dirty = false;
  table.addEventListener("input", function () { dirty = true; recompute(); });
  var form = table.closest("form");
  if (form) { form.addEventListener("submit", function () { dirty = false; }); }
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
})();
