// Run dashboard: small plotly charts in foldable sections, sharing the step axis, with a metric search.
// Data comes from the run's metrics.json (downsampled on the server, ≤ maxPoints per series);
// while the run is active, new points are fetched every few seconds and appended.
(function () {
  "use strict";
  var POLL_MS = 5000;
  var FOLDED_KEY = "lab.dashboard.folded";  // the sections a reader folded, kept across runs and visits
  var COLORS = LabCharts.COLORS;

  function readConfig(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function ema(ys, alpha) {
    // Debiased exponential moving average (as TensorBoard's smoothing slider).
    if (!alpha) return ys;
    var out = [], last = 0, weight = 0;
    for (var i = 0; i < ys.length; i++) {
      last = last * alpha + (1 - alpha) * ys[i];
      weight = weight * alpha + (1 - alpha);
      out.push(last / weight);
    }
    return out;
  }

  var plain = LabCharts.plain;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;  // never innerHTML: names come from the trainer's stream
    return node;
  }

  function Dashboard(config) {
    this.config = config;
    this.series = {};  // name -> {x, y, raw, drawn, bucket (steps per min/max bucket)}
    this.evalSeries = [];
    this.panels = [];
    this.smoothing = 0;
    this.syncing = false;
  }

  Dashboard.prototype.build = function (grid) {
    // Charts go in sections (R1's signature, policy health, systems, …), each a <details> the reader can
    // fold; a page without sections (the benchmarks page) gets one flat grid.
    var self = this;
    var sections = this.config.sections || [];
    var grids = {};
    var folded = readFolded();
    this.sections = [];
    if (sections.length) {
      grid.classList.add("chart-sections");
      sections.forEach(function (section) {
        var box = el("details", "chart-section");
        box.dataset.section = section.key;
        box.open = folded.indexOf(section.key) < 0;
        var summary = el("summary", "chart-section-title");
        summary.appendChild(el("span", "", section.title));
        var count = el("span", "chart-section-count");
        summary.appendChild(count);
        if (section.description) summary.appendChild(el("span", "chart-section-desc", section.description));
        box.appendChild(summary);
        var inner = el("div", "chart-grid");
        box.appendChild(inner);
        grid.appendChild(box);
        grids[section.key] = inner;
        var state = { key: section.key, box: box, count: count, wasOpen: null, auto: false };
        self.sections.push(state);
        box.addEventListener("toggle", function () {
          if (state.auto) { state.auto = false; return; }  // opened by the search for the moment: not the reader's fold
          var now = readFolded().filter(function (k) { return k !== section.key; });
          if (!box.open) now.push(section.key);
          writeFolded(now);
        });
      });
    }
    this.config.panels.forEach(function (panel) {
      var box = el("figure", "chart");
      box.dataset.key = panel.key;
      box.appendChild(el("figcaption", "chart-title", panel.title));
      if (panel.description) box.appendChild(el("p", "chart-desc", panel.description));
      var plot = el("div", "plot");
      box.appendChild(plot);
      var counts = el("p", "chart-counts", "loading…");  // raw / drawn: shown on hover (lab.css)
      box.appendChild(counts);
      (grids[panel.section] || grid).appendChild(box);
      self.panels.push({ spec: panel, plot: plot, counts: counts, drawn: false, box: box });
    });
    this.countSections();
    // Charts load as they scroll into view (a folded section or a chart hidden by the search never does).
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        var panel = self.panels.find(function (p) { return p.box === entry.target; });
        observer.unobserve(entry.target);
        if (panel) self.load(panel);
      });
    }, { rootMargin: "200px" });
    this.panels.forEach(function (p) { observer.observe(p.box); });
  };

  Dashboard.prototype.matches = function (panel, terms) {
    // Every term in the chart's title or one of its metric names (case-insensitive), as W&B's panel search.
    var text = [panel.spec.title].concat(panel.spec.names || []).join(" ").toLowerCase();
    return terms.every(function (term) { return text.indexOf(term) >= 0; });
  };

  Dashboard.prototype.search = function (query) {
    var self = this;
    var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    var wasSearching = this.searching;
    this.searching = terms.length > 0;
    this.panels.forEach(function (p) { p.box.classList.toggle("filtered-out", !self.matches(p, terms)); });
    this.sections.forEach(function (section) {
      var shown = self.panels.some(function (p) { return p.spec.section === section.key && !p.box.classList.contains("filtered-out"); });
      section.box.classList.toggle("filtered-out", !shown);
      var open = section.box.open;
      if (self.searching) {
        if (!wasSearching) section.wasOpen = open;
        if (shown) open = true;  // the matches are seen without unfolding by hand
      } else if (wasSearching && section.wasOpen !== null) {
        open = section.wasOpen;
      }
      if (open !== section.box.open) { section.auto = true; section.box.open = open; }
    });
    this.countSections();
    var note = document.getElementById("metric-search-count");
    if (note) {
      var n = this.panels.filter(function (p) { return !p.box.classList.contains("filtered-out"); }).length;
      note.textContent = this.searching ? n + " of " + this.panels.length + " charts" : "";
    }
  };

  Dashboard.prototype.countSections = function () {
    var self = this;
    this.sections.forEach(function (section) {
      var n = self.panels.filter(function (p) { return p.spec.section === section.key && !p.box.classList.contains("filtered-out"); }).length;
      section.count.textContent = n + (n === 1 ? " chart" : " charts");
    });
  };

  function readFolded() {
    try { return JSON.parse(window.localStorage.getItem(FOLDED_KEY) || "[]"); } catch (e) { return []; }
  }

  function writeFolded(keys) {
    try { window.localStorage.setItem(FOLDED_KEY, JSON.stringify(keys)); } catch (e) { /* private mode */ }
  }

  Dashboard.prototype.url = function (names, afterStep, withEval) {
    var params = new URLSearchParams();
    if (names.length) params.set("names", names.join(","));
    if (afterStep !== null && afterStep !== undefined) params.set("after_step", String(afterStep));
    if (withEval) params.set("eval", "1");
    params.set("max_points", String(this.config.maxPoints));
    return this.config.metricsUrl + "?" + params.toString();
  };

  Dashboard.prototype.load = function (panel) {
    var self = this;
    fetch(this.url(panel.spec.names, null, panel.spec.eval), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        data.series.forEach(function (s) { self.series[s.name] = s; });
        if (data.eval) { self.evalSeries = data.eval; self.evalSeriesLoaded = true; }
        self.draw(panel);
      });
  };

  Dashboard.prototype.traces = function (panel) {
    var self = this, traces = [], spec = panel.spec;
    if (spec.eval) {
      return this.evalOf(spec).map(function (s, i) {
        return { x: s.x, y: s.y, name: plain(s.name), mode: "lines+markers", line: { color: COLORS[i % COLORS.length] } };
      });
    }
    var secondary = spec.secondary || [];
    var band = spec.band || [];
    if (band.length === 2 && this.series[band[0]] && this.series[band[1]]) {
      var low = this.series[band[0]], high = this.series[band[1]];
      traces.push({ x: low.x, y: ema(low.y, this.smoothing), name: plain(band[0]), mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" });
      traces.push({ x: high.x, y: ema(high.y, this.smoothing), name: "p10–p90", mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(37,99,235,0.15)" });
    }
    var colour = 0;
    spec.names.forEach(function (name) {
      if (band.indexOf(name) >= 0) return;
      var s = self.series[name];
      if (!s) return;
      var trace = { x: s.x, y: ema(s.y, self.smoothing), name: plain(name), mode: "lines", line: { width: 1.5, color: COLORS[colour++ % COLORS.length] } };
      if (secondary.indexOf(name) >= 0) trace.yaxis = "y2";  // another unit or scale: its own axis, right
      traces.push(trace);
    });
    return traces;
  };

  Dashboard.prototype.evalOf = function (spec) {
    // An evaluation chart draws the series of one unit (scores or token lengths), never both on one axis.
    return this.evalSeries.filter(function (s) { return !spec.evalUnit || (s.unit || "fraction") === spec.evalUnit; });
  };

  Dashboard.prototype.countsText = function (panel) {
    var self = this;
    var list = panel.spec.eval ? this.evalOf(panel.spec) : panel.spec.names.map(function (n) { return self.series[n]; }).filter(Boolean);
    return list.map(function (s) {
      var text = s.name + ": " + s.raw.toLocaleString() + " raw / " + s.x.length.toLocaleString() + " drawn";
      return s.bucket > 1 ? text + " (min/max per " + s.bucket.toLocaleString() + " steps)" : text;
    }).join(" · ");
  };

  Dashboard.prototype.draw = function (panel) {
    var self = this;
    var layout = {
      margin: { l: 48, r: 8, t: 8, b: 32 }, height: 220, showlegend: true,
      legend: { orientation: "h", y: -0.18, font: { size: 10 } },
      xaxis: {}, yaxis: { automargin: true },
      font: { size: 11 },
    };
    if (this.xRange) layout.xaxis.range = this.xRange;
    var traces = this.traces(panel), spec = panel.spec;
    if (spec.percent) layout.yaxis.tickformat = ".0%";
    var right = traces.filter(function (t) { return t.yaxis === "y2"; });
    if (right.length) {
      var left = spec.names.filter(function (n) { return (spec.secondary || []).indexOf(n) < 0; });
      layout.yaxis.title = { text: plain(left.join(", ")), font: { size: 10 } };
      layout.yaxis2 = {
        overlaying: "y", side: "right", automargin: true, showgrid: false, exponentformat: "e",
        title: { text: plain(spec.secondary.join(", ")), font: { size: 10 } },
      };
      layout.margin.r = 56;
    }
    if (spec.eval && this.evalSeriesLoaded && !traces.length) {
      panel.counts.textContent = "no data";
      panel.box.hidden = true;  // e.g. no length metric among this run's evaluations
      return;
    }
    Plotly.react(panel.plot, traces, layout, { displaylogo: false, responsive: true });
    panel.counts.textContent = this.countsText(panel);
    if (!panel.drawn) {
      panel.drawn = true;
      panel.plot.on("plotly_relayout", function (event) { self.syncAxes(panel, event); });
    }
  };

  Dashboard.prototype.syncAxes = function (source, event) {
    // All charts share the step axis: zooming one zooms the others.
    if (this.syncing) return;
    var range = null;
    if (event["xaxis.range[0]"] !== undefined) range = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
    else if (event["xaxis.autorange"]) range = null;
    else return;
    this.xRange = range;
    this.syncing = true;
    var update = range ? { "xaxis.range": range } : { "xaxis.autorange": true };
    this.panels.forEach(function (p) { if (p !== source && p.drawn) Plotly.relayout(p.plot, update); });
    this.syncing = false;
  };

  Dashboard.prototype.redrawAll = function () {
    var self = this;
    this.panels.forEach(function (p) { if (p.drawn) self.draw(p); });
  };

  Dashboard.prototype.lastStep = function () {
    var last = null;
    Object.keys(this.series).forEach(function (name) {
      var xs = this.series[name].x;
      if (xs.length && (last === null || xs[xs.length - 1] > last)) last = xs[xs.length - 1];
    }, this);
    return last;
  };

  Dashboard.prototype.poll = function () {
    var self = this;
    var names = Object.keys(this.series);
    var after = this.lastStep();
    var note = document.getElementById("live-note");
    var request = (names.length ? this.url(names, after, false) : this.config.metricsUrl + "?") + "&with_names=1";
    var known = this.config.names || [];
    fetch(request, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        // Metrics the page was built without (e.g. GRPO's after pretraining) need new charts: reload.
        if ((data.names || []).some(function (n) { return known.indexOf(n) < 0; })) { window.location.reload(); return; }
        var reload = false;
        data.series.forEach(function (s) {
          var mine = self.series[s.name];
          if (!mine) return;
          mine.x = mine.x.concat(s.x);
          mine.y = mine.y.concat(s.y);
          mine.raw += s.raw;
          if (mine.x.length > 2 * self.config.maxPoints) reload = true;
        });
        if (!names.length && data.step > 0) { window.location.reload(); return; }  // first metrics: build the grid
        if (reload) self.panels.forEach(function (p) { if (p.drawn) self.load(p); });
        else self.redrawAll();
        if (note) note.textContent = "live · step " + data.step + " · updated " + new Date().toLocaleTimeString();
        if (data.active || data.status === "queued") setTimeout(function () { self.poll(); }, POLL_MS);
        else if (note) note.textContent = "run " + data.status;
      })
      .catch(function () { setTimeout(function () { self.poll(); }, POLL_MS * 2); });
  };

  function start() {
    var config = readConfig("chart-config");
    if (!config) return;
    var dashboard = new Dashboard(config);
    var grid = document.getElementById("chart-grid");
    if (grid) dashboard.build(grid);
    var slider = document.getElementById("smoothing");
    if (slider) {
      slider.addEventListener("input", function () {
        dashboard.smoothing = parseFloat(slider.value);
        document.getElementById("smoothing-value").textContent = slider.value;
        dashboard.redrawAll();
      });
    }
    var search = document.getElementById("metric-search");
    if (search) {
      search.addEventListener("input", function () { dashboard.search(search.value); });
      if (search.value) dashboard.search(search.value);  // kept by the browser on back/forward
    }
    if (config.active) setTimeout(function () { dashboard.poll(); }, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
