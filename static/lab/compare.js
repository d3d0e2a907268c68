// One metric overlaid across runs (each run's series downsampled on the server).
(function () {
  "use strict";
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563", "#65a30d", "#9333ea"];

  function plain(text) {
    // plotly reads <b>, <a href>, … in names as markup: give it the characters as entities.
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function start() {
    var node = document.getElementById("compare-config");
    if (!node) return;
    var config = JSON.parse(node.textContent);
    var plot = document.getElementById("compare-plot");
    var counts = document.getElementById("compare-counts");
    var requests = config.runs.map(function (run) {
      var params = new URLSearchParams({ names: config.metric, max_points: String(config.maxPoints) });
      return fetch(run.url + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) { return { run: run, series: data.series[0] }; });
    });
    Promise.all(requests).then(function (results) {
      var traces = results.map(function (res, i) {
        var s = res.series || { x: [], y: [], raw: 0 };
        return { x: s.x, y: s.y, name: plain(res.run.name), mode: "lines", line: { color: COLORS[i % COLORS.length] } };
      });
      Plotly.newPlot(plot, traces, {
        margin: { l: 56, r: 8, t: 8, b: 40 }, height: 420, xaxis: { title: { text: "step" } },
        yaxis: { title: { text: plain(config.metric) } }, legend: { orientation: "h" },
      }, { displaylogo: false, responsive: true });
      counts.textContent = results.map(function (res) {
        var s = res.series || { raw: 0, x: [] };
        return res.run.name + ": " + s.raw + " raw / " + s.x.length + " drawn";
      }).join(" · ");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
