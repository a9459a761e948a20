// Each <time datetime="…" data-zone="Area/City"> shows a moment in the cohort's time zone
// (rendered by the server, so it reads without JavaScript). Where the reader's own time zone
// differs, add their local time after it: "Fri 4 Dec 17:00 CET (your time: Fri 4 Dec 11:00 EST)".
(function () {
  "use strict";
  if (typeof Intl === "undefined" || !Intl.DateTimeFormat) return;
  var reader = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!reader) return;
  var parts = { weekday: "short", day: "numeric", month: "short", hour: "2-digit",
                minute: "2-digit", hourCycle: "h23" };
  function format(date, zone, withName) {
    var options = Object.assign({ timeZone: zone }, parts);
    if (withName) options.timeZoneName = "short";
    return new Intl.DateTimeFormat(undefined, options).format(date);
  }
  document.querySelectorAll("time[datetime][data-zone]").forEach(function (el) {
    var zone = el.getAttribute("data-zone");
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date.getTime()) || zone === reader) return;
    try {
      // Same wall clock in both zones (e.g. Europe/Paris and Europe/Berlin): nothing to add.
      if (format(date, zone, false) === format(date, reader, false)) return;
    } catch (e) {
      return; // a zone this browser does not know
    }
    var local = document.createElement("span");
    local.className = "local-time";
    local.textContent = " (your time: " + format(date, reader, true) + ")";
    el.insertAdjacentElement("afterend", local);
  });
})();
