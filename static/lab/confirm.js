// A form with data-confirm asks before it is sent (Cancel a run, …). Delegated from the document, so forms
// that htmx swaps in later ask too. No inline handlers: the Content-Security-Policy allows none.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
}, true);
