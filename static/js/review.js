// The reviewer pages' behaviour: keyboard, the decision dialog, bulk selection, live
// deadlines, and what the live queue keeps across its refreshes (the selected row, the
// checked rows, focus). No inline script anywhere: the Content-Security-Policy forbids it.
(function () {
  "use strict";

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const LABELS = { approve: "Approve", reject: "Reject", quarantine: "Quarantine" };

  // What survives a refresh of #results: ids, never elements (the rows are replaced).
  const kept = { current: null, index: -1, checked: new Set(), focusInRows: false };
  let pending = null; // the decision the dialog is asking about

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function rows() {
    return $$("#results tbody tr.row[data-action-id]");
  }

  function rowFor(actionId) {
    return rows().find((row) => row.dataset.actionId === actionId) || null;
  }

  function currentRow() {
    return kept.current ? rowFor(kept.current) : null;
  }

  function announce(text, problem) {
    const list = $("#outcomes");
    if (!list) return;
    const item = document.createElement("li");
    item.className = problem ? "problem" : "ok";
    item.textContent = text;
    list.prepend(item);
  }

  // --- selection ----------------------------------------------------------------------

  function select(row, { focus = true } = {}) {
    rows().forEach((each) => {
      each.classList.remove("current");
      each.removeAttribute("aria-current");
    });
    if (!row) {
      kept.current = null;
      kept.index = -1;
      return;
    }
    row.classList.add("current");
    row.setAttribute("aria-current", "true");
    kept.current = row.dataset.actionId;
    kept.index = rows().indexOf(row);
    if (focus) {
      row.focus();
      row.scrollIntoView({ block: "nearest" });
    }
  }

  // A row another reviewer is reviewing right now (their claim has not lapsed).
  function claimedByOther(row) {
    const until = row.dataset.claimUntil;
    return !!(row.dataset.claimedBy && until && Date.parse(until) > Date.now());
  }

  function move(delta) {
    const list = rows();
    if (!list.length) return;
    const at = list.indexOf(currentRow());
    // "Next" skips rows someone else is reviewing; stay put when every row further on is.
    let next = at < 0 ? (delta > 0 ? 0 : list.length - 1) : at + delta;
    while (next >= 0 && next < list.length && claimedByOther(list[next])) next += delta;
    if (next < 0 || next >= list.length) {
      if (at < 0) {
        const free = list.find((row) => !claimedByOther(row));
        if (free) select(free);
      }
      return;
    }
    select(list[next]);
  }

  function selectNear(index) {
    const list = rows();
    if (!list.length) {
      select(null);
      const empty = $("#results");
      if (empty) empty.focus();
      return;
    }
    let row = list[Math.min(Math.max(index, 0), list.length - 1)];
    if (row.classList.contains("conflict") && list[index + 1]) row = list[index + 1];
    select(row);
  }

  // --- bulk selection -----------------------------------------------------------------

  function updateBulkCount() {
    const label = $("#bulk-count");
    if (!label) return;
    const n = kept.checked.size;
    label.textContent = n ? `${n} row${n === 1 ? "" : "s"} selected` : "No rows selected (x selects)";
  }

  function toggleChecked(row) {
    const box = row && $("input[type=checkbox][name=action_ids]", row);
    if (!box) {
      announce("This row can not be selected for a bulk decision.", true);
      return;
    }
    box.checked = !box.checked;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.name !== "action_ids") return;
    if (box.checked) kept.checked.add(box.value);
    else kept.checked.delete(box.value);
    updateBulkCount();
  });

  // --- the decision dialog ------------------------------------------------------------

  function openDecision(row, decision) {
    const dialog = $("#decide-dialog");
    if (!dialog || !row) return;
    const allowed = (row.dataset.decisions || "").split(" ").filter(Boolean);
    if (!allowed.includes(decision)) {
      announce(`${LABELS[decision]} is not offered for ${row.dataset.actionId}.`, true);
      return;
    }
    pending = { rowId: row.id, actionId: row.dataset.actionId, decision, url: row.dataset.decideUrl, index: rows().indexOf(row) };
    $("#decide-title").textContent = `${LABELS[decision]}: ${row.dataset.title}`;
    $("#decide-what").textContent = row.dataset.actionId;
    const reason = $("#decide-reason");
    reason.value = "";
    reason.required = decision !== "approve";
    $("#decide-required").textContent = reason.required ? "(required)" : "(optional)";
    $("#decide-confirm").textContent = LABELS[decision];
    $("#decide-error").hidden = true;
    dialog.showModal();
    reason.focus();
  }

  function sendDecision() {
    const dialog = $("#decide-dialog");
    const reason = $("#decide-reason");
    if (!pending) return;
    if (reason.required && !reason.value.trim()) {
      const error = $("#decide-error");
      error.textContent = "A reason is required to reject or quarantine.";
      error.hidden = false;
      reason.focus();
      return;
    }
    const decision = pending;
    pending = null;
    dialog.close();
    const row = document.getElementById(decision.rowId);
    // Where the row is now: a refresh while the dialog was open may have moved it.
    const index = row ? rows().indexOf(row) : decision.index;
    htmx
      .ajax("POST", decision.url, {
        target: row ? `#${decision.rowId}` : "#outcomes",
        swap: row ? "outerHTML" : "none",
        values: { decision: decision.decision, reason: reason.value, where: "row" },
        headers: { "X-CSRFToken": csrfToken() },
      })
      .then(() => {
        kept.checked.delete(decision.actionId);
        updateBulkCount();
        selectNear(index);
      });
  }

  function setUpDialog() {
    const dialog = $("#decide-dialog");
    if (!dialog) return;
    $("#decide-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sendDecision();
    });
    $("#decide-cancel").addEventListener("click", () => dialog.close());
    $("#decide-reason").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        sendDecision();
      }
    });
    dialog.addEventListener("close", () => {
      // The close event comes a task after close(): a dialog opened again meanwhile
      // (Esc, then "a" at once) keeps its new decision.
      if (dialog.open) return;
      pending = null;
      const row = currentRow();
      if (row) row.focus();
    });
  }

  // --- keyboard -----------------------------------------------------------------------

  function typing(target) {
    return target instanceof Element && !!target.closest("input, textarea, select, [contenteditable=true]");
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if ($$("dialog[open]").length) return; // the dialog handles its own keys; Esc closes it
    if (typing(event.target) || !$("#results")) return;
    const row = currentRow();
    switch (event.key) {
      case "j":
        move(1);
        break;
      case "k":
        move(-1);
        break;
      case "Enter":
        if (!row || event.target.closest("a, button, summary")) return;
        window.location.assign(row.dataset.detailUrl);
        break;
      case "a":
        openDecision(row, "approve");
        break;
      case "r":
        openDecision(row, "reject");
        break;
      case "q":
        openDecision(row, "quarantine");
        break;
      case "x":
        toggleChecked(row);
        break;
      case "?":
        $("#keys-dialog").showModal();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", (event) => {
    if (!(event.target instanceof Element)) return;
    const button = event.target.closest("button[data-decision]");
    const row = event.target.closest("#results tr.row[data-action-id]");
    if (button && row) {
      select(row, { focus: false });
      openDecision(row, button.dataset.decision);
    } else if (event.target.id === "keys-button") {
      $("#keys-dialog").showModal();
    } else if (row && !event.target.closest("a, button, input, summary")) {
      select(row);
    }
  });

  // --- deadlines, to the second -------------------------------------------------------

  function left(ms) {
    const minutes = Math.floor(ms / 60000);
    if (minutes >= 60) return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m left`;
    if (minutes >= 1) return `${minutes}m left`;
    return `${Math.max(1, Math.floor(ms / 1000))}s left`;
  }

  function since(ms) {
    const minutes = Math.max(0, Math.floor(ms / 60000));
    return minutes < 1 ? "under a minute" : `${minutes} min`;
  }

  function tick() {
    const now = Date.now();
    $$("time.claim-since[data-since]").forEach((time) => {
      time.textContent = since(now - Date.parse(time.dataset.since));
    });
    $$("#results tr.row[data-claimed-by]").forEach((row) => {
      if (!claimedByOther(row)) {
        const note = $(".claimed", row);
        if (note) note.hidden = true; // the claim lapsed: the row is free again
      }
    });
    $$("time.deadline[data-deadline]").forEach((time) => {
      const ms = Date.parse(time.dataset.deadline) - now;
      const row = time.closest("tr.row");
      if (ms <= 0) {
        time.textContent = "expired";
        time.classList.add("expired");
        if (row) {
          row.classList.add("overdue");
          row.dataset.decisions = "";
          $$("td.decide button, input[name=action_ids]", row).forEach((control) => {
            control.disabled = true;
          });
        }
      } else {
        time.textContent = left(ms);
        time.classList.toggle("soon", ms < 3600000);
      }
    });
  }

  // --- the live queue: keep selection, checks and focus across refreshes -------------

  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (!target || target.id !== "results") return;
    const active = document.activeElement;
    kept.focusInRows = !!(active && active.closest && active.closest("#results tr.row"));
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    if (!$("#results")) return;
    // Rows that left (decided here or elsewhere) are no longer selected for bulk.
    const present = new Set(rows().map((row) => row.dataset.actionId));
    kept.checked.forEach((id) => {
      if (!present.has(id)) kept.checked.delete(id);
    });
    $$("#results input[name=action_ids]").forEach((box) => {
      box.checked = kept.checked.has(box.value);
    });
    updateBulkCount();
    tick();
    if (event.detail.target && event.detail.target.id === "results") {
      const row = currentRow();
      if (row) select(row, { focus: kept.focusInRows });
      else if (kept.index >= 0 && kept.focusInRows) selectNear(kept.index);
    }
  });

  // --- claims: leaving the detail page ends the reviewer's claim ---------------------

  window.addEventListener("pagehide", () => {
    const panel = $("#decision-panel[data-release-url]");
    if (!panel || !navigator.sendBeacon) return;
    const form = new FormData();
    form.append("csrfmiddlewaretoken", csrfToken());
    navigator.sendBeacon(panel.dataset.releaseUrl, form);
  });

  document.addEventListener("DOMContentLoaded", () => {
    setUpDialog();
    updateBulkCount();
    tick();
    window.setInterval(tick, 1000);
  });
})();
