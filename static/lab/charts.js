// What every chart script shares: the line colours, and plain() for text plotly would read as markup.
// Loaded (deferred) by base.html before any page script.
(function () {
  "use strict";
  window.LabCharts = {
    COLORS: ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"],
    plain: function (text) {
      // plotly reads <b>, <a href>, … in trace names as markup: give it the characters as entities.
      return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    },
  };
})();
