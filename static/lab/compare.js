// Compare runs: one chart per chosen metric, each overlaying the runs (series downsampled on the server).
(function () {
  "use strict";
  var COLORS = LabCharts.COLORS.concat(["#65a30d", "#9333ea"]);

  var plain = LabCharts.plain;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;  // never innerHTML: names come from users and the trainer
    return node;
  }

  function start() {
    var node = document.getElementById("compare-config");
    if (!node) return;
    var config = JSON.parse(node.textContent);
    var grid = document.getElementById("compare-plot");
    var charts = config.metrics.map(function (metric) {
      var box = el("figure", "chart compare-chart");
      box.dataset.metric = metric;
      box.appendChild(el("figcaption", "chart-title", metric));
      var plot = el("div", "plot");
      box.appendChild(plot);
      var counts = el("p", "chart-counts", "loading…");
      box.appendChild(counts);
      grid.appendChild(box);
      return { metric: metric, plot: plot, counts: counts };
    });
    // one request per run carries every chosen metric
    var requests = config.runs.map(function (run) {
      var params = new URLSearchParams({ names: config.metrics.join(","), max_points: String(config.maxPoints) });
      return fetch(run.url + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var byName = {};
          data.series.forEach(function (s) { byName[s.name] = s; });
          return { run: run, series: byName };
        });
    });
    Promise.all(requests).then(function (results) {
      charts.forEach(function (chart) {
        var traces = results.map(function (res, i) {
          var s = res.series[chart.metric] || { x: [], y: [], raw: 0 };
          return { x: s.x, y: s.y, name: plain(res.run.name), mode: "lines", line: { color: COLORS[i % COLORS.length] } };
        });
        Plotly.newPlot(chart.plot, traces, {
          margin: { l: 56, r: 8, t: 8, b: 40 }, height: 320, xaxis: { title: { text: "step" } },
          yaxis: { title: { text: plain(chart.metric) }, automargin: true }, legend: { orientation: "h", y: -0.25 },
        }, { displaylogo: false, responsive: true });
        chart.counts.textContent = results.map(function (res) {
          var s = res.series[chart.metric] || { raw: 0, x: [] };
          return res.run.name + ": " + s.raw + " raw / " + s.x.length + " drawn";
        }).join(" · ");
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
