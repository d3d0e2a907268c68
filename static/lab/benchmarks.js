// Team benchmarks page: one benchmark across runs and checkpoints (x = step, one line per run).
// The data comes from the page (json_script "benchmark-chart"); run names are data, never markup.
(function () {
  "use strict";
  var COLORS = LabCharts.COLORS;

  var plain = LabCharts.plain;

  function draw() {
    var node = document.getElementById("benchmark-chart");
    var plot = document.getElementById("benchmark-plot");
    if (!node || !plot || typeof Plotly === "undefined") return;
    var chart = JSON.parse(node.textContent);
    var percent = chart.metric !== "" && chart.series.every(function (s) { return s.y.every(function (v) { return v >= 0 && v <= 1; }); });
    var traces = chart.series.map(function (s, i) {
      return {
        x: s.x, y: s.y, name: plain(s.name), mode: "lines+markers", type: "scatter",
        line: { color: COLORS[i % COLORS.length], width: 2 }, marker: { size: 6 },
        hovertemplate: "step %{x}: %{y" + (percent ? ":.1%" : ":.3g") + "}<extra>" + plain(s.name) + "</extra>",
      };
    });
    var layout = {
      margin: { l: 56, r: 8, t: 8, b: 40 }, height: 340, showlegend: true,
      legend: { orientation: "h", y: -0.2, font: { size: 11 } },
      xaxis: { title: { text: "checkpoint step" }, zeroline: false },
      yaxis: { title: { text: plain(chart.metric) }, automargin: true, tickformat: percent ? ".0%" : "", rangemode: "tozero" },
      font: { size: 11 },
    };
    Plotly.newPlot(plot, traces, layout, { displaylogo: false, responsive: true });
  }

  function pickOnChange() {
    var select = document.getElementById("benchmark-select");
    if (select) select.addEventListener("change", function () { select.form.submit(); });
  }

  document.addEventListener("DOMContentLoaded", function () { pickOnChange(); draw(); });
})();
