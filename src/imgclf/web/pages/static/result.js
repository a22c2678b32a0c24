// Polls the job until it is finished or failed, then draws the top 5 as horizontal bars.
(function () {
  "use strict";
  var section = document.getElementById("result");
  var statusEl = document.getElementById("status");
  var chart = document.getElementById("chart");
  var errorEl = document.getElementById("error");
  // Long polling: the server answers as soon as the job ends, or after 10 s at the latest.
  var url = section.dataset.statusUrl + "?wait=10";
  var WORDS = {
    queued: "Queued: waiting for a worker...",
    started: "Classifying...",
    deferred: "Waiting for another job to finish...",
    scheduled: "Scheduled...",
  };
  var delay = 200;

  function setStatus(status, text) {
    statusEl.dataset.status = status;
    statusEl.textContent = text;
  }

  function fail(message) {
    setStatus("failed", "Failed.");
    errorEl.textContent = message;
    errorEl.hidden = false;
  }

  function draw(rows) {
    chart.replaceChildren();
    rows.forEach(function (row) {
      var item = document.createElement("li");
      var label = document.createElement("span");
      label.className = "label";
      label.textContent = row[0];
      var track = document.createElement("span");
      track.className = "track";
      var bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = Math.max(0, Math.min(100, row[1])) + "%";
      track.appendChild(bar);
      var percent = document.createElement("span");
      percent.className = "percent";
      percent.textContent = row[1].toFixed(1) + " %";
      item.append(label, track, percent);
      chart.appendChild(item);
    });
    chart.hidden = false;
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { code: response.status, body: body }; });
      })
      .then(function (answer) {
        var body = answer.body;
        if (answer.code === 404) { fail(body.detail || "This job no longer exists."); return; }
        if (answer.code !== 200) { retry("The server answered " + answer.code + "; retrying..."); return; }
        if (body.task_status === "finished") { setStatus("finished", "Done."); draw(body.data); return; }
        if (body.task_status === "failed") { fail(body.error || "The classification failed."); return; }
        if (WORDS[body.task_status]) { setStatus(body.task_status, WORDS[body.task_status]); retry(); return; }
        fail("The job ended as " + body.task_status + ".");
      })
      .catch(function () { retry("Connection lost; retrying..."); });
  }

  function retry(message) {
    if (message) statusEl.textContent = message;
    delay = Math.min(delay * 1.5, 2000);  // quick at first, gentle on a long queue
    window.setTimeout(poll, delay);
  }

  poll();
})();
