// The stance review form: quotes by keyboard (sentence by sentence, or typed), by mouse
// (selection), drafts saved as you go, submit. Quotes are exact passages of the paper; the
// page checks a typed one at once and the server checks every quote on every save.
(function () {
  "use strict";
  const stateEl = document.getElementById("review-state");
  const form = document.getElementById("review-form");
  if (!stateEl || !form) return;
  const state = JSON.parse(stateEl.textContent);
  const paper = document.getElementById("paper-text");
  const status = document.getElementById("review-status");
  const problems = document.getElementById("review-problems");
  const target = document.getElementById("quote-target");
  const csrfInput = document.querySelector('input[name="csrf_token"]');
  const csrf = csrfInput ? csrfInput.value : "";
  let editable = form.dataset.editable === "yes";
  const paperText = paper.textContent;
  let quotes = state.quotes.map(function (q) { return { component: q.component, text: q.text }; });
  let version = state.version;
  let timer = null;
  let saving = false;

  function squash(text) { return text.replace(/\s+/g, " ").trim(); }
  const flatPaper = squash(paperText);

  function labelOf(component) {
    const fieldset = component
      ? form.querySelector('fieldset[data-field="components.' + component + '"] legend')
      : null;
    return fieldset ? fieldset.textContent : "the overall stance";
  }

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
        remove.setAttribute("aria-label", "Remove the quote “" + q.text.slice(0, 40) + "”");
        remove.addEventListener("click", function () {
          quotes.splice(i, 1);
          renderQuotes();
          status.textContent = "Quote removed.";
          const next = form.querySelector('ul.quotes[data-component="' + (q.component || "") + '"] button');
          (next || listFor(q.component).closest("fieldset").querySelector("select")).focus();
          schedule();
        });
        li.appendChild(document.createTextNode(" "));
        li.appendChild(remove);
      }
      ul.appendChild(li);
    });
  }

  function addQuote(component, text) {
    quotes.push({ component: component || null, text: text });
    renderQuotes();
    status.textContent = "Quote added to " + labelOf(component) + ".";
    schedule();
  }

  // --- the paper, sentence by sentence (roving focus: one tab stop, arrows move) ---
  function sentences(text) {
    const parts = [];
    const re = /[^\n]*?(?:[.!?]+["'”’)\]]*(?=\s)|\n|$)\s*/g;
    let match;
    let at = 0;
    while (at < text.length && (match = re.exec(text)) !== null) {
      if (match[0] === "") { re.lastIndex += 1; continue; }
      parts.push(match[0]);
      at = re.lastIndex;
    }
    if (parts.join("") !== text) return [text];  // never change what the paper says
    return parts;
  }

  let spans = [];
  if (editable && paper) {
    paper.replaceChildren();
    sentences(paperText).forEach(function (part) {
      if (!part.trim()) { paper.appendChild(document.createTextNode(part)); return; }
      const span = document.createElement("span");
      span.className = "sentence";
      span.textContent = part;
      span.tabIndex = -1;
      paper.appendChild(span);
      spans.push(span);
    });
    if (spans.length) spans[0].tabIndex = 0;
    paper.addEventListener("keydown", function (event) {
      const i = spans.indexOf(document.activeElement);
      if (i < 0) return;
      let j = i;
      if (event.key === "ArrowDown" || event.key === "ArrowRight") j = Math.min(i + 1, spans.length - 1);
      else if (event.key === "ArrowUp" || event.key === "ArrowLeft") j = Math.max(i - 1, 0);
      else if (event.key === "Home") j = 0;
      else if (event.key === "End") j = spans.length - 1;
      else if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        addQuote(target ? target.value : "", spans[i].textContent.trim());
        return;
      } else return;
      event.preventDefault();
      spans[i].tabIndex = -1;
      spans[j].tabIndex = 0;
      spans[j].focus();
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

  // Each problem goes next to the field it is about; the focus moves to the first one.
  function errorSlot(field) {
    const m = /^evidence\[(\d+)\]/.exec(field || "");
    if (m) {
      const q = quotes[Number(m[1])];
      const key = q && q.component ? "components." + q.component : "evidence";
      return form.querySelector('[data-error-for~="' + key + '"]');
    }
    return field ? form.querySelector('[data-error-for~="' + field + '"]') : null;
  }

  function showProblems(list) {
    problems.replaceChildren();
    form.querySelectorAll("[data-error-for]").forEach(function (p) { p.textContent = ""; });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (el) {
      el.removeAttribute("aria-invalid");
    });
    let first = null;
    (list || []).forEach(function (p) {
      const slot = errorSlot(p.field);
      if (slot) {
        const message = p.message.charAt(0).toUpperCase() + p.message.slice(1) + ".";
        slot.textContent = slot.textContent ? slot.textContent + " " + message : message;
        const control = form.querySelector('[aria-describedby~="' + slot.id + '"]');
        if (control) {
          control.setAttribute("aria-invalid", "true");
          if (!first) first = control;
        }
      } else {
        const li = document.createElement("li");
        li.textContent = p.message;
        problems.appendChild(li);
      }
    });
    if (first) first.focus();
  }

  function becomeReadOnly() {
    editable = false;
    form.dataset.editable = "no";
    form.classList.add("read-only");
    form.querySelectorAll("fieldset").forEach(function (f) { f.disabled = true; });
    form.querySelectorAll(".quote-box").forEach(function (b) { b.remove(); });
    renderQuotes();
    const next = document.getElementById("next-review");
    if (next) next.hidden = false;
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
          status.textContent = "Your review is submitted. It is read-only now.";
          becomeReadOnly();
          const next = document.querySelector("#next-review a");
          if (next) next.focus();
        } else {
          status.textContent = "Draft saved.";
        }
      } else {
        status.textContent = submit
          ? "Not submitted yet: please fix what is marked below."
          : (data.detail || "Could not save.");
        showProblems(data.errors);
      }
    } catch (err) {
      status.textContent = "Could not reach the server; your changes are kept here. Try again.";
    } finally {
      saving = false;
    }
  }

  function schedule() {
    if (!editable) return;
    clearTimeout(timer);
    timer = setTimeout(function () { save(false); }, 1500);
  }

  form.querySelectorAll("button.add-quote").forEach(function (button) {
    button.addEventListener("mousedown", function (event) { event.preventDefault(); });
    button.addEventListener("click", function () {
      const text = selectedPassage();
      if (!text) {
        status.textContent = "First select a passage in the paper (or type it in the quote box).";
        return;
      }
      addQuote(button.dataset.component, text);
    });
  });
  form.querySelectorAll("button.add-typed").forEach(function (button) {
    const input = document.getElementById(button.dataset.input);
    const error = document.getElementById(button.dataset.input + "-error");
    function add() {
      const text = input.value.trim();
      error.textContent = "";
      input.removeAttribute("aria-invalid");
      if (!text) {
        error.textContent = "Type or paste a passage of the paper first.";
      } else if (flatPaper.indexOf(squash(text)) < 0) {
        error.textContent = "This is not a passage of the paper: quote its words exactly.";
      } else {
        addQuote(button.dataset.component, text);
        input.value = "";
        return;
      }
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    button.addEventListener("click", add);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); add(); }
    });
  });
  form.addEventListener("input", function (event) {
    if (!event.target.classList.contains("typed-quote")) schedule();
  });
  form.addEventListener("change", function (event) {
    if (!event.target.classList.contains("typed-quote")) schedule();
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  const draft = document.getElementById("save-draft");
  if (draft) draft.addEventListener("click", function () { save(false); });
  const submitButton = document.getElementById("submit-review");
  if (submitButton) submitButton.addEventListener("click", function () { save(true); });
  renderQuotes();
})();
