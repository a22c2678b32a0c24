// Refreshes parts of a page from the server's own rendering of it, so that the chart, the
// histograms and the downloads are drawn in one place (the templates) whether a job ended before
// the page was opened or while it was being watched.
window.imgclfLive = (function () {
  "use strict";

  // Replace each element of `ids` with its fresh copy, and put the text of each element of
  // `textIds` into the one already here (a live region keeps its node, so its change is announced).
  function swap(ids, textIds) {
    return fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        ids.forEach(function (id) {
          var old = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (old && next) old.replaceWith(document.importNode(next, true));
        });
        (textIds || []).forEach(function (id) {
          var old = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (old && next && old.textContent !== next.textContent) old.textContent = next.textContent;
        });
        if (fresh.title) document.title = fresh.title;
      });
  }

  return { swap: swap };
})();

// A comparison's page: long-polls the comparison resource and refreshes the columns whenever a
// model's job moves on, until every one has ended.
(function () {
  "use strict";
  var section = document.getElementById("comparison");
  if (!section) return;
  var UNFINISHED = { queued: true, running: true };
  var LONG_POLL = "?wait=20";
  var shown = null;

  function signature(comparison) {
    return comparison.classifications
      .map(function (job) {
        return job.id + ":" + job.status;
      })
      .join(",");
  }

  function poll() {
    fetch(section.dataset.resourceUrl + LONG_POLL, { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 404) {
          window.location.reload(); // the server says it is gone, on the page itself
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (comparison) {
        if (!comparison) return;
        var now = signature(comparison);
        var refresh = now !== shown ? window.imgclfLive.swap(["heading", "columns"], ["status"]) : Promise.resolve();
        shown = now;
        return refresh.then(function () {
          if (UNFINISHED[comparison.status]) window.setTimeout(poll, 250);
        });
      })
      .catch(function () {
        window.setTimeout(poll, 3000);
      });
  }

  if (UNFINISHED[section.dataset.status]) poll();
})();
