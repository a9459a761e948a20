// Live updates for a thread page: new, edited and hidden posts appear without a reload.
// The server renders each event for this viewer; we only place the HTML it sends.
(function () {
  "use strict";
  var thread = document.querySelector("[data-events]");
  var replies = document.getElementById("replies");
  if (!thread || !replies || !window.EventSource) return;

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content.firstElementChild;
  }

  function depthOf(el) {
    return parseInt(el.getAttribute("data-depth") || "0", 10);
  }

  function place(data) {
    var el = fragment(data.html);
    if (!el) return;
    var existing = document.getElementById(el.id);
    if (existing) {
      existing.replaceWith(el);
      return;
    }
    var parent = data.post.parent && document.getElementById("post-" + data.post.parent);
    if (parent && parent.parentNode === replies) {
      var after = parent;
      var depth = depthOf(parent);
      while (after.nextElementSibling && depthOf(after.nextElementSibling) > depth) {
        after = after.nextElementSibling;
      }
      after.after(el);
    } else {
      replies.appendChild(el);
    }
    el.classList.add("is-new");
  }

  var source = new EventSource(thread.getAttribute("data-events"));
  ["post_created", "post_edited", "post_hidden", "post_unhidden", "post_deleted"].forEach(
    function (name) {
      source.addEventListener(name, function (event) {
        var data = JSON.parse(event.data);
        if (data.html && data.post) place(data);
      });
    }
  );
})();
