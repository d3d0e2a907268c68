// Findings and chain pages: the charts of each finding (comparison.json's `charts`, and heldout accuracy per
// stage), from the page's json_script "findings-charts". Titles, labels and series names are data, never markup.
// x values that are text (stages, metrics, methods) are categories: grouped bars when every series has a value
// for every category (at most 8 series: e.g. two sides × 3 seeds); lines with markers otherwise (a series with `dash`
// or `reference`: a dashed reference line), joined across a missing value over steps but not over categories.
(function () {
  "use strict";
  var COLORS = LabCharts.COLORS;
  var plain = LabCharts.plain;

  function isNumber(v) { return typeof v === "number" && isFinite(v); }

  function draw(chart) {
    var plot = document.getElementById(chart.id);
    if (!plot) return;
    var categorical = chart.series.some(function (s) { return s.x.some(function (x) { return typeof x === "string"; }); });
    var complete = chart.series.every(function (s) { return s.y.every(isNumber); });
    var bars = categorical && complete && chart.series.length <= 8;
    var traces = chart.series.map(function (s, i) {
      var trace = {
        x: s.x.map(function (x) { return typeof x === "string" ? plain(x) : x; }), y: s.y, name: plain(s.name),
        type: bars ? "bar" : "scatter", marker: { color: COLORS[i % COLORS.length], size: 7 },
        hovertemplate: "%{x}: %{y:.4~g}<extra>" + plain(s.name) + "</extra>",
      };
      if (bars) {  // the value on each bar: a 0 is otherwise no bar at all
        trace.texttemplate = "%{y:.3~g}";
        trace.textposition = "outside";
        trace.cliponaxis = false;
      } else {
        var dashed = s.dash || s.reference;  // a reference line (a target) is dashed
        trace.mode = dashed ? "lines" : "lines+markers";
        // a curve over steps spans an evaluation it lacks; over categories (stages) a gap stays a gap, as a line
        // through a stage without a value would read as its value
        trace.connectgaps = !categorical;
        trace.line = { color: COLORS[i % COLORS.length], width: 2, dash: dashed ? "dash" : "solid" };
      }
      return trace;
    });
    var allY = [].concat.apply([], chart.series.map(function (s) { return s.y.filter(isNumber); }));
    var unit = allY.length && allY.every(function (y) { return y >= 0 && y <= 1; }) && /pass@|accuracy|rate/i.test(chart.y_label + chart.title);
    Plotly.newPlot(plot, traces, {
      margin: { l: 60, r: 8, t: bars ? 24 : 8, b: categorical ? 80 : 48 }, height: 300, showlegend: chart.series.length > 1,
      legend: { orientation: "h", y: categorical ? -0.45 : -0.25, font: { size: 11 } }, barmode: "group",
      xaxis: { type: categorical ? "category" : "linear", tickangle: categorical ? -30 : 0,
               title: { text: plain(chart.x_label || "") } },
      yaxis: { title: { text: plain(chart.y_label || "") }, tickformat: unit ? ".0%" : "", rangemode: "tozero",
               range: unit ? [0, 1.02] : undefined },
      font: { size: 11 },
    }, { displaylogo: false, responsive: true });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("findings-charts");
    if (!node || typeof Plotly === "undefined") return;
    JSON.parse(node.textContent).forEach(draw);
  });
})();
