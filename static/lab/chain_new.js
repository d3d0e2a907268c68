// New chain run: choosing another chain shows that chain's plan (every plan is on the page, one shown) and its
// name as the Name field's placeholder.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("chain");
    if (!select) return;
    select.addEventListener("change", function () {
      document.querySelectorAll("section.chain-plan").forEach(function (section) {
        section.hidden = section.getAttribute("data-chain") !== select.value;
      });
      var name = document.getElementById("name");
      if (name) name.placeholder = select.value;
    });
  });
})();
