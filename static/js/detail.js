// The detail page's keys: a/r/q open a decision with its reason box focused, e the edit
// of the inputs, j/k the next or previous request of the queue as filtered, u or Esc back
// to the queue on this request's row, ? the list of keys. No key fires while the reviewer
// types in a field. The links and forms are the server's: this only finds and follows them.
(function () {
  "use strict";

  const $ = (selector, root = document) => root.querySelector(selector);
  const REASON_FOR = { approve: "#approve-reason", reject: "#reject-reason", quarantine: "#reject-reason" };

  function typing(target) {
    return target instanceof Element && !!target.closest("input, textarea, select, [contenteditable=true]");
  }

  function say(text) {
    const status = $("#detail-keys-status");
    if (status) status.textContent = text;
  }

  function follow(selector, missing) {
    const link = $(selector);
    if (link) window.location.assign(link.href);
    else say(missing);
  }

  // The reason box of a decision, focused; Enter in it then sends that decision.
  function openDecision(decision) {
    const reason = $(REASON_FOR[decision]);
    const button = reason && $(`button[name=decision][value=${decision}]`, reason.form);
    if (!button) {
      say(`${decision[0].toUpperCase()}${decision.slice(1)} is not offered here.`);
      return;
    }
    reason.dataset.decision = decision;
    reason.scrollIntoView({ block: "center" });
    reason.focus();
  }

  function openEdit() {
    const edit = $("#edit-inputs");
    if (!edit) {
      say("No edit is offered here.");
      return;
    }
    edit.open = true;
    const first = $(".input-fields input, .input-fields textarea, #edit-inputs-json", edit);
    if (first) {
      if (first.id === "edit-inputs-json") first.closest("details").open = true;
      first.scrollIntoView({ block: "center" });
      first.focus();
    }
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    // Enter in a reason box a key opened sends its decision; Shift+Enter is a new line.
    if (event.key === "Enter" && !event.shiftKey && target instanceof HTMLTextAreaElement && target.dataset.decision) {
      const button = $(`button[name=decision][value=${target.dataset.decision}]`, target.form);
      if (button) {
        event.preventDefault();
        button.click(); // as the reviewer's click: htmx sends the button's decision with the form
      }
      return;
    }
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return; // Esc closes the dialog itself
    if (typing(target)) {
      if (event.key === "Escape") target.blur(); // out of the field; the next Esc goes back
      return;
    }
    switch (event.key) {
      case "a":
        openDecision("approve");
        break;
      case "r":
        openDecision("reject");
        break;
      case "q":
        openDecision("quarantine");
        break;
      case "e":
        openEdit();
        break;
      case "j":
        follow("#queue-next", "This is the last request of the queue.");
        break;
      case "k":
        follow("#queue-previous", "This is the first request of the queue.");
        break;
      case "u":
      case "Escape":
        follow("#queue-back", "");
        break;
      case "?":
        $("#detail-keys-dialog").showModal();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  // A key-opened reason box is an ordinary one again once the reviewer leaves it.
  document.addEventListener("focusout", (event) => {
    if (event.target instanceof HTMLTextAreaElement) delete event.target.dataset.decision;
  });

  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.id === "detail-keys-button") {
      $("#detail-keys-dialog").showModal();
    }
  });
})();
