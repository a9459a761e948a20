// The moderator's workspace, live: when anything in the assignment changes (a post, a flag,
// a paper, a review), the server sends the affected sections re-rendered as HTML (the same
// templates as the page) and this swaps them in. Without JavaScript the page is complete;
// it is simply as fresh as its last load.
(function () {
  "use strict";
  const root = document.getElementById("workspace");
  const status = document.getElementById("workspace-status");
  if (!root || !window.EventSource) return;
  const source = new EventSource(root.dataset.events);
  source.addEventListener("workspace", function (event) {
    const sections = JSON.parse(event.data).sections;
    // Keep the disclosures the moderator opened open across the swap.
    const open = new Set(
      Array.from(root.querySelectorAll("details[open][id]"), function (d) { return d.id; })
    );
    Object.keys(sections).forEach(function (name) {
      const target = root.querySelector('[data-live-section="' + name + '"]');
      if (target) target.innerHTML = sections[name];
    });
    open.forEach(function (id) {
      const details = document.getElementById(id);
      if (details) details.open = true;
    });
    if (status) status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
  });
})();
