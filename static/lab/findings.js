// Findings page: per chain, heldout accuracy at each stage (x = stage, one line per chain run).
// The data comes from the page (json_script "findings-charts"); run names are data, never markup.
(function () {
  "use strict";
  var COLORS = LabCharts.COLORS;

  var plain = LabCharts.plain;

  function draw() {
    var node = document.getElementById("findings-charts");
    if (!node || typeof Plotly === "undefined") return;
    JSON.parse(node.textContent).forEach(function (chart) {
      var plot = document.getElementById(chart.id);
      if (!plot) return;
      var stages = chart.data.stages.map(plain);
      var traces = chart.data.series.map(function (s, i) {
        return {
          x: stages, y: s.y, name: plain(s.name), mode: "lines+markers", type: "scatter", connectgaps: true,
          line: { color: COLORS[i % COLORS.length], width: 2 }, marker: { size: 7 },
          hovertemplate: "%{x}: %{y:.1%}<extra>" + plain(s.name) + "</extra>",
        };
      });
      Plotly.newPlot(plot, traces, {
        margin: { l: 56, r: 8, t: 8, b: 70 }, height: 300, showlegend: true,
        legend: { orientation: "h", y: -0.35, font: { size: 11 } },
        xaxis: { type: "category", tickangle: -30 },
        yaxis: { title: { text: "heldout pass@1" }, tickformat: ".0%", range: [0, 1] },
        font: { size: 11 },
      }, { displaylogo: false, responsive: true });
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
