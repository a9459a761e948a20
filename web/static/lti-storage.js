// LTI client-side postMessages (platform storage): where cookies are blocked in the LMS's
// iframe, the login leaves its browser binding in the LMS's storage (lti.put_data) and the
// launch reads it back (lti.get_data). Messages go only to the platform's origin, and only
// its answers (same origin, same message id) are read.
(function () {
  "use strict";
  var holder = document.getElementById("lti-storage");
  if (!holder) return;
  var mode = holder.getAttribute("data-mode");
  var config = JSON.parse(holder.textContent);
  var messageId = (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
    : String(Math.random()).slice(2) + String(Date.now());
  var done = false;

  function platformWindow() {
    var parent = window.parent !== window ? window.parent : window.opener;
    if (!parent) return null;
    if (config.target === "_parent") return parent;
    try { return parent.frames[config.target] || null; } catch (e) { return null; }
  }

  function finish(value) {
    if (done) return;
    done = true;
    if (mode === "put") {
      window.location.assign(config.next);
      return;
    }
    var form = document.getElementById("lti-relaunch");
    if (value) form.elements.lti_binding.value = value;
    form.submit();
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== config.origin || typeof event.data !== "object" || !event.data) return;
    if (event.data.message_id !== messageId) return;
    var expected = mode === "put" ? "lti.put_data.response" : "lti.get_data.response";
    if (event.data.subject !== expected) return;
    finish(event.data.error ? "" : event.data.value);
  });

  var target = platformWindow();
  if (!target) { finish(""); return; }
  var message = { subject: mode === "put" ? "lti.put_data" : "lti.get_data",
                  message_id: messageId, key: config.key };
  if (mode === "put") message.value = config.value;
  target.postMessage(message, config.origin);
  // A platform that does not answer: carry on (a cookie may still do the job).
  window.setTimeout(function () { finish(""); }, 3000);
})();
