// Live completion on the moderator's review dashboard (Server-Sent Events).
(function () {
  "use strict";
  const panel = document.getElementById("completion");
  const text = document.getElementById("completion-text");
  if (!panel || !text || !window.EventSource) return;
  const source = new EventSource(panel.dataset.events);
  source.addEventListener("completion", function (event) {
    const c = JSON.parse(event.data).completion;
    text.textContent = c.submitted + " of " + c.tasks + " reviews submitted (" + c.started +
      " started, " + c.assigned + " not started), " + c.papers + " papers.";
  });
})();
