// Review keys on the review queue (and on a trace opened from it): g good, b bad, f flag — each rates the
// trace and sends the rating form, which opens the next one — and n skips to the next without rating.
// Keys do nothing while a text field has the focus (the labels and the comment) or with Ctrl/Alt/Meta.
// A static file: the Content-Security-Policy allows no inline script.
(() => {
  "use strict";
  const RATINGS = { g: "good", b: "bad", f: "flag" };
  const TYPING = new Set(["TEXTAREA", "SELECT"]);
  const NOT_TEXT = new Set(["radio", "checkbox", "button", "submit", "reset", "range", "color", "file", "image"]);
  let sent = false;

  function typing(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable || TYPING.has(element.tagName)) return true;
    return element.tagName === "INPUT" && !NOT_TEXT.has((element.type || "text").toLowerCase());
  }

  document.addEventListener("keydown", (event) => {
    const form = document.querySelector("form[data-review-keys]");
    if (!form || sent || event.defaultPrevented || event.repeat) return;
    if (event.ctrlKey || event.altKey || event.metaKey || event.isComposing) return;
    if (typing(event.target) || typing(document.activeElement)) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : "";
    if (key in RATINGS) {
      const radio = form.querySelector(`input[name="rating"][value="${RATINGS[key]}"]`);
      if (!radio) return;
      event.preventDefault();
      radio.checked = true;
      sent = true;
      if (typeof form.requestSubmit === "function") form.requestSubmit(); else form.submit();
    } else if (key === "n") {
      const skip = document.getElementById("queue-skip");
      if (!skip) return;
      event.preventDefault();
      sent = true;
      window.location.assign(skip.href);
    }
  });
  // back/forward cache: a page shown again may take keys again
  window.addEventListener("pageshow", () => { sent = false; });
})();
