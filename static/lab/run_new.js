// New-run form: fields that differ from the recipe's config (or the defaults) are highlighted as the user
// edits them, and each folded section says how many of its fields differ.
(function () {
  "use strict";

  function current(field) {
    var input = field.querySelector("input, select, textarea");
    if (!input) return null;
    if (input.type === "checkbox") return input.checked ? "on" : "";
    return input.value;
  }

  function same(a, b) {
    // as the server compares: equal text, or equal numbers (0.00010 is 1e-4), or equal JSON (spacing apart)
    if (a === b) return true;
    if (a.trim() !== "" && b.trim() !== "" && !isNaN(Number(a)) && !isNaN(Number(b))) return Number(a) === Number(b);
    try { return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b)); } catch (e) { return false; }
  }

  function mark(field, label) {
    var baseline = field.dataset.baseline;
    var value = current(field);
    if (value === null || baseline === undefined) return;
    var differs = !same(value, baseline);
    field.classList.toggle("differs", differs);
    var note = field.querySelector(".was");
    if (differs && !note) {
      var small = field.querySelector("small");
      if (!small) { small = document.createElement("small"); field.appendChild(small); }
      note = document.createElement("span");
      note.className = "was";
      small.appendChild(document.createTextNode(" "));
      small.appendChild(note);
    }
    if (note) {
      if (differs) {
        var shown = baseline === "" ? "(empty)" : baseline.length > 80 ? baseline.slice(0, 79) + "…" : baseline;
        note.textContent = label + ": " + shown + ".";  // textContent: never markup
      } else {
        note.remove();
      }
    }
  }

  function count(section) {
    var badge = section.querySelector(".differ-count");
    if (!badge) return;
    var n = section.querySelectorAll(".field.differs").length;
    badge.textContent = n + (n === 1 ? " differs" : " differ");
    badge.classList.toggle("none", n === 0);
  }

  function start() {
    var form = document.querySelector("form.run-form");
    if (!form) return;
    // getAttribute, not form.dataset: a form exposes its controls by name, and one is called "dataset"
    var label = form.getAttribute("data-baseline-label") || "Was";
    form.querySelectorAll(".field[data-baseline]").forEach(function (field) {
      var update = function () {
        mark(field, label);
        var section = field.closest("details.config-section");
        if (section) count(section);
      };
      field.addEventListener("input", update);
      field.addEventListener("change", update);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
