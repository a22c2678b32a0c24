// Follows a job on its result page while it is queued or running: Server-Sent Events, or long
// polling where EventSource is missing or fails. Says where the job stands ("3rd in line, about
// 2 s"); when it ends, the page's photo, chart, histograms, timings and downloads are refreshed
// from the server's rendering (live.js), the same as for a job that had ended already.
(function () {
  "use strict";
  var section = document.getElementById("result");
  if (!section) return;
  var statusEl = document.getElementById("status");
  var connection = document.getElementById("connection");
  var attempts = Number(section.dataset.attempts);
  var UNFINISHED = { queued: true, running: true };
  var LONG_POLL = "?wait=20";
  var delay = 1000;
  var ended = false;

  function ordinal(number) {
    var suffixes = { 1: "st", 2: "nd", 3: "rd" };
    var teen = number % 100 >= 10 && number % 100 <= 20;
    return number + ((!teen && suffixes[number % 10]) || "th");
  }

  function seconds(value) {
    return value < 90 ? Math.max(1, value) + " s" : Math.round(value / 60) + " min";
  }

  function words(job) {
    var eta = job.eta_seconds;
    if (job.status === "queued") {
      var place = job.position === null || job.position === undefined ? "queued" : ordinal(job.position + 1) + " in line";
      return eta === null || eta === undefined ? place : place + ", about " + seconds(eta);
    }
    if (job.status === "running") {
      var running = job.attempt > 1 ? "running (attempt " + job.attempt + " of " + attempts + ")" : "running";
      return eta ? running + ", about " + seconds(eta) + " left" : running;
    }
    if (job.status === "succeeded") return job.cached ? "Done (from the cache)." : "Done.";
    return job.status === "canceled" ? "Canceled." : "Failed.";
  }

  function say(status, text) {
    section.dataset.status = status;
    statusEl.dataset.status = status;
    statusEl.textContent = text;
  }

  function show(job) {
    connection.hidden = true;
    delay = 1000;
    say(job.status, words(job));
    if (UNFINISHED[job.status]) return;
    ended = true;
    window.imgclfLive.swap(["heading", "photo", "details"]).catch(function () {
      window.location.reload();
    });
  }

  function gone(message) {
    ended = true;
    say("gone", "No longer available: " + (message || "this result expired or never existed."));
  }

  function follow() {
    if (!window.EventSource) {
      poll();
      return;
    }
    var source = new EventSource(section.dataset.eventsUrl);
    source.addEventListener("status", function (event) {
      show(JSON.parse(event.data));
      if (ended) source.close();
    });
    // Both the server's own `event: error` (the job vanished: it has data) and a failed
    // connection (it has none) arrive here.
    source.addEventListener("error", function (event) {
      source.close();
      if (event.data) gone(JSON.parse(event.data).error);
      else if (!ended) poll();
    });
  }

  function poll() {
    var started = Date.now();
    fetch(section.dataset.resourceUrl + LONG_POLL, { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          return { response: response, body: body };
        });
      })
      .then(function (answer) {
        var code = answer.response.status;
        var retryAfter = Number(answer.response.headers.get("Retry-After")) || 1;
        if (code === 404) gone(answer.body.detail);
        else if (code !== 200) retry(retryAfter);
        else {
          show(answer.body);
          // A long poll answered at once (the server holds only so many) must not become a busy loop.
          if (!ended) window.setTimeout(poll, Date.now() - started < 1000 ? retryAfter * 1000 : 0);
        }
      })
      .catch(function () {
        retry(1);
      });
  }

  function retry(after) {
    connection.hidden = false;
    delay = Math.min(Math.max(delay * 2, after * 1000), 30000);
    window.setTimeout(poll, delay);
  }

  if (UNFINISHED[section.dataset.status]) follow();
})();
