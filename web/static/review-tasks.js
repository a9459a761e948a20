// Live status of my review tasks (Server-Sent Events): a changed task updates its badge;
// a new task or a phase change reloads the list.
(function () {
  "use strict";
  const list = document.getElementById("review-task-list");
  if (!list || !window.EventSource) return;
  const source = new EventSource(list.dataset.events);
  source.addEventListener("task", function (event) {
    const task = JSON.parse(event.data);
    const item = document.getElementById("task-" + task.id);
    if (!item) { window.location.reload(); return; }
    const badge = item.querySelector(".badge");
    badge.className = "badge task-" + task.status;
    badge.textContent = task.status.charAt(0).toUpperCase() + task.status.slice(1);
  });
  source.addEventListener("phase", function () { window.location.reload(); });
})();
