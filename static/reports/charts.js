/* Draws every report chart on the page with Chart.js (static/vendor/chartjs), from specs the server
   renders with json_script: <canvas data-chart="ID"> reads <script id="ID" type="application/json">. */
(function () {
  "use strict";

  function withUnit(unit) {
    return function (value) {
      return value === null || value === undefined ? "–" : Number(value).toLocaleString() + unit;
    };
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof window.Chart === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var unit = spec.unit || "";
    delete spec.unit;
    var format = withUnit(unit);
    var valueAxis = spec.options.indexAxis === "y" ? "x" : "y";
    spec.options.scales = spec.options.scales || {};
    spec.options.scales[valueAxis] = spec.options.scales[valueAxis] || {};
    spec.options.scales[valueAxis].ticks = { callback: format };
    spec.options.plugins = spec.options.plugins || {};
    spec.options.plugins.tooltip = {
      callbacks: {
        label: function (context) {
          var value = valueAxis === "x" ? context.parsed.x : context.parsed.y;
          return context.dataset.label + ": " + format(value);
        }
      }
    };
    new window.Chart(canvas, spec);
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
