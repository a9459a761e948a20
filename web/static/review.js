// The stance review form: quote-by-selection, drafts saved as you go, submit.
// Quotes are exact passages of the paper (the server checks them on every save).
(function () {
  "use strict";
  const stateEl = document.getElementById("review-state");
  const form = document.getElementById("review-form");
  if (!stateEl || !form) return;
  const state = JSON.parse(stateEl.textContent);
  const paper = document.getElementById("paper-text");
  const status = document.getElementById("review-status");
  const problems = document.getElementById("review-problems");
  const csrfInput = document.querySelector('input[name="csrf_token"]');
  const csrf = csrfInput ? csrfInput.value : "";
  const editable = form.dataset.editable === "yes";
  let quotes = state.quotes.map(function (q) { return { component: q.component, text: q.text }; });
  let version = state.version;
  let timer = null;
  let saving = false;

  function listFor(component) {
    return form.querySelector('ul.quotes[data-component="' + (component || "") + '"]');
  }

  function renderQuotes() {
    form.querySelectorAll("ul.quotes").forEach(function (ul) { ul.replaceChildren(); });
    quotes.forEach(function (q, i) {
      const ul = listFor(q.component);
      if (!ul) return;
      const li = document.createElement("li");
      const text = document.createElement("q");
      text.textContent = q.text;
      li.appendChild(text);
      if (editable) {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link-button";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove this quote");
        remove.addEventListener("click", function () {
          quotes.splice(i, 1);
          renderQuotes();
          schedule();
        });
        li.appendChild(document.createTextNode(" "));
        li.appendChild(remove);
      }
      ul.appendChild(li);
    });
  }

  function selectedPassage() {
    const selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return "";
    const range = selection.getRangeAt(0);
    if (!paper.contains(range.commonAncestorContainer)) return "";
    return selection.toString().trim();
  }

  function body(submit) {
    const components = {};
    form.querySelectorAll("select[data-key]").forEach(function (sel) {
      if (sel.value) components[sel.dataset.key] = sel.value;
    });
    const overall = form.querySelector("#overall").value;
    return {
      overall_stance: overall || null,
      components: components,
      evidence: quotes,
      rationale: form.querySelector("#rationale").value,
      suggestion: form.querySelector("#suggestion").value,
      version: version,
      submit: submit,
    };
  }

  function showProblems(list) {
    problems.replaceChildren();
    (list || []).forEach(function (p) {
      const li = document.createElement("li");
      li.textContent = (p.field ? p.field + ": " : "") + p.message;
      problems.appendChild(li);
    });
  }

  async function save(submit) {
    if (saving) { schedule(); return; }
    saving = true;
    clearTimeout(timer);
    status.textContent = submit ? "Submitting…" : "Saving…";
    try {
      const response = await fetch(state.api, {
        method: "PUT",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body(submit)),
        credentials: "same-origin",
      });
      const data = await response.json();
      if (response.ok) {
        version = data.review ? data.review.version : version;
        showProblems([]);
        document.getElementById("task-status").textContent =
          data.status.charAt(0).toUpperCase() + data.status.slice(1);
        if (data.status === "submitted") {
          status.textContent = "Your review is submitted.";
          form.querySelectorAll("fieldset").forEach(function (f) { f.disabled = true; });
          form.dataset.editable = "no";
        } else {
          status.textContent = "Draft saved.";
        }
      } else {
        status.textContent = data.detail || "Could not save.";
        showProblems(data.errors);
      }
    } catch (err) {
      status.textContent = "Could not reach the server; your changes are kept here. Try again.";
    } finally {
      saving = false;
    }
  }

  function schedule() {
    if (form.dataset.editable !== "yes") return;
    clearTimeout(timer);
    timer = setTimeout(function () { save(false); }, 1500);
  }

  form.querySelectorAll("button.add-quote").forEach(function (button) {
    button.addEventListener("mousedown", function (event) { event.preventDefault(); });
    button.addEventListener("click", function () {
      const text = selectedPassage();
      if (!text) {
        status.textContent = "First select a passage in the paper.";
        return;
      }
      quotes.push({ component: button.dataset.component || null, text: text });
      renderQuotes();
      status.textContent = "Quote added.";
      schedule();
    });
  });
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  document.getElementById("save-draft").addEventListener("click", function () { save(false); });
  document.getElementById("submit-review").addEventListener("click", function () { save(true); });
  renderQuotes();
})();
