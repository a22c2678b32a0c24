// The last results a person looked at, remembered in this browser only (localStorage, never sent
// anywhere): a page that shows one (an element with data-recent-url and data-recent-title) puts
// it first, and a page with a #recent section lists them. Storage that throws (private modes,
// blocked cookies) or holds something else leaves the pages as they are without the script.
(function () {
  "use strict";
  var KEY = "imgclf.recent";
  var LIMIT = 20;
  var MAX_TITLE = 200;
  // A path on this site: "/" and then not "/" or "\" ("//host" and "/\host" name another site),
  // and nothing a URL parser strips or reads differently (whitespace, control characters, "\").
  var SAME_SITE_PATH = /^\/(?![\/\\])[^\s\x00-\x1f\x7f\\]*$/;

  function storage() {
    try {
      return window.localStorage || null;
    } catch (error) {
      return null;
    }
  }

  function onThisSite(url) {
    if (typeof url !== "string" || !SAME_SITE_PATH.test(url)) return false;
    try {
      return new URL(url, window.location.href).origin === window.location.origin;
    } catch (error) {
      return false;
    }
  }

  // What was stored is checked as it is read: anything else in the list is left out.
  function entry(value) {
    if (!value || typeof value !== "object" || !onThisSite(value.url)) return null;
    if (typeof value.title !== "string" || !value.title.trim()) return null;
    return {
      url: value.url,
      title: value.title.trim().slice(0, MAX_TITLE),
      at: typeof value.at === "string" ? value.at : ""
    };
  }

  function read() {
    var list;
    try {
      list = JSON.parse(storage().getItem(KEY) || "[]");
    } catch (error) {
      return [];
    }
    if (!Array.isArray(list)) return [];
    var seen = {};
    var entries = [];
    list.forEach(function (value) {
      var checked = entry(value);
      if (!checked || seen.hasOwnProperty(checked.url) || entries.length >= LIMIT) return;
      seen[checked.url] = true;
      entries.push(checked);
    });
    return entries;
  }

  function write(entries) {
    try {
      if (entries.length) storage().setItem(KEY, JSON.stringify(entries));
      else storage().removeItem(KEY);
    } catch (error) {
      // Nothing remembered, then; the page works the same.
    }
  }

  function record(element) {
    var latest = entry({
      url: element.getAttribute("data-recent-url"),
      title: element.getAttribute("data-recent-title"),
      at: new Date().toISOString()
    });
    if (!latest) return;
    write(
      [latest].concat(
        read().filter(function (earlier) {
          return earlier.url !== latest.url;
        })
      ).slice(0, LIMIT)
    );
  }

  function when(at) {
    var date = new Date(at);
    if (!at || isNaN(date.getTime())) return null;
    var time = document.createElement("time");
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleString(undefined, {
      day: "numeric", month: "short", hour: "2-digit", minute: "2-digit"
    });
    return time;
  }

  function show(section, list) {
    var entries = read();
    list.replaceChildren();
    entries.forEach(function (value) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.setAttribute("href", value.url);
      link.textContent = value.title;
      item.appendChild(link);
      var time = when(value.at);
      if (time) item.append(" ", time);
      list.appendChild(item);
    });
    section.hidden = entries.length === 0;
  }

  var shown = document.querySelector("[data-recent-url][data-recent-title]");
  if (shown) record(shown);

  var section = document.getElementById("recent");
  var list = document.getElementById("recent-list");
  var forget = document.getElementById("forget-recent");
  if (!section || !list || !forget) return;
  forget.addEventListener("click", function () {
    write([]);
    list.replaceChildren();
    section.hidden = true;
  });
  show(section, list);
})();
