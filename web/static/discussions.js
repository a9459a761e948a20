// The thread page's one composer and one flag form move under the post they are for (the
// Reply and Flag buttons also work without JavaScript: they reload the page with the form
// set for the post).
(function () {
  "use strict";
  var composer = document.getElementById("composer");
  var flagPanel = document.getElementById("flag-panel");
  var composerHome = composer && composer.parentNode;
  var composerNext = composer && composer.nextSibling;
  var heading = document.getElementById("reply-heading");

  function articleOf(link) {
    return link.closest("article.post");
  }

  function replyTo(id, link) {
    var parent = composer.querySelector("[data-parent]");
    var note = composer.querySelector("[data-replying]");
    parent.value = id || "";
    note.hidden = !id;
    if (id) {
      composer.querySelector("[data-replying-link]").setAttribute("href", "#post-" + id);
      heading.textContent = "Reply to a post";
      articleOf(link).after(composer);
    } else {
      heading.textContent = "Reply to the thread";
      composerHome.insertBefore(composer, composerNext);
    }
    composer.querySelector("textarea").focus();
  }

  function flag(id, link) {
    var form = flagPanel.querySelector("form");
    var action = flagPanel.getAttribute("data-flag-action");
    form.setAttribute("action", action.replace("__ID__", encodeURIComponent(id)));
    flagPanel.querySelector("[data-flagging-link]").setAttribute("href", "#post-" + id);
    flagPanel.hidden = false;
    articleOf(link).after(flagPanel);
    flagPanel.querySelector("select").focus();
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest && event.target.closest("a, button[form=pick]");
    if (!target) return;
    // The Reply and Flag buttons (without JavaScript they reload the page, form set).
    var pick = target.tagName === "BUTTON" ? target.name : "";
    if (composer && pick === "reply_to") {
      event.preventDefault();
      replyTo(target.value, target);
    } else if (composer && target.hasAttribute("data-reply-cancel")) {
      event.preventDefault();
      replyTo("", target);
    } else if (flagPanel && pick === "flag") {
      event.preventDefault();
      flag(target.value, target);
    } else if (flagPanel && target.hasAttribute("data-flag-cancel")) {
      event.preventDefault();
      flagPanel.hidden = true;
    }
  });
})();

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

  // The browser reconnects by itself after a dropped stream; a refused one (503 while a
  // lecture hall connects at once) it gives up on, so we open it again, later each time,
  // from the last event seen.
  var lastId = "";
  var delay = 2000;
  function open() {
    var url = thread.getAttribute("data-events");
    if (lastId) {
      url += (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + encodeURIComponent(lastId);
    }
    var source = new EventSource(url);
    ["post_created", "post_edited", "post_hidden", "post_unhidden", "post_deleted"].forEach(
      function (name) {
        source.addEventListener(name, function (event) {
          if (event.lastEventId) lastId = event.lastEventId;
          delay = 2000;
          var data = JSON.parse(event.data);
          if (data.html && data.post) place(data);
        });
      }
    );
    source.addEventListener("error", function () {
      if (source.readyState !== EventSource.CLOSED) return;
      setTimeout(open, delay + Math.random() * delay);
      delay = Math.min(delay * 2, 60000);
    });
  }
  open();
})();
