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
  let anchor = null; // where a Shift+x range starts: the row last toggled with x

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
    anchor = anchor && rowFor(anchor) ? anchor : row.dataset.actionId;
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

  function decidable(row) {
    return !!(row.dataset.decisions || "").trim();
  }

  // The rows "next" passes over: someone else is reviewing it, or (when the reviewer may
  // decide anything on the page at all) this reviewer may not decide it. A viewer, who
  // may decide nothing, still moves through every row.
  function skipper(list) {
    const mayDecideSome = list.some(decidable);
    return (row) => claimedByOther(row) || (mayDecideSome && !decidable(row));
  }

  // The first row from `start` on in the direction `delta` that is not skipped, or null.
  function nextFrom(list, start, delta) {
    const skipped = skipper(list);
    for (let at = start; at >= 0 && at < list.length; at += delta) {
      if (!skipped(list[at])) return list[at];
    }
    return null;
  }

  function move(delta) {
    const list = rows();
    if (!list.length) return;
    const at = list.indexOf(currentRow());
    if (at < 0) {
      const first = nextFrom(list, delta > 0 ? 0 : list.length - 1, delta) || nextFrom(list, delta > 0 ? list.length - 1 : 0, -delta);
      if (first) select(first);
      return;
    }
    const next = nextFrom(list, at + delta, delta); // stay put when every row further on is skipped
    if (next) select(next);
  }

  // After a decision: the next row "next" would go to, from where the decided row was
  // (`index`; `after`: the row is still there, a vote or a conflict, so start past it),
  // else the nearest one before it; with none, the list itself keeps the focus.
  function moveOnFrom(index, after) {
    const list = rows();
    const start = Math.max(0, after ? index + 1 : index);
    const row = nextFrom(list, start, 1) || nextFrom(list, Math.min(start, list.length) - 1, -1);
    if (row) {
      select(row);
      return;
    }
    select(null);
    const results = $("#results");
    if (results) results.focus();
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
    anchor = row.dataset.actionId;
  }

  function setChecked(row, checked) {
    const box = row && $("input[type=checkbox][name=action_ids]", row);
    if (!box || box.checked === checked) return;
    box.checked = checked;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // Shift+x: every row from the last one toggled with x (else the first one selected) to
  // the selected one is checked; when all of them already are, unchecked.
  function toggleRange(row) {
    if (!row) return;
    const list = rows();
    const from = anchor ? list.indexOf(rowFor(anchor)) : -1;
    if (from < 0) {
      toggleChecked(row);
      return;
    }
    const to = list.indexOf(row);
    const span = list.slice(Math.min(from, to), Math.max(from, to) + 1);
    const boxes = span.map((each) => $("input[type=checkbox][name=action_ids]", each)).filter(Boolean);
    const checked = !boxes.every((box) => box.checked);
    span.forEach((each) => setChecked(each, checked));
  }

  // *: every row on the page that can be selected; again, none.
  function toggleAll() {
    const boxes = $$("#results input[type=checkbox][name=action_ids]");
    if (!boxes.length) {
      announce("No row on this page can be selected for a bulk decision.", true);
      return;
    }
    const checked = !boxes.every((box) => box.checked);
    boxes.forEach((box) => setChecked(box.closest("tr"), checked));
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
      const voted = decision === "approve" && row.dataset.voted === "true";
      announce(
        voted
          ? `You already approved ${row.dataset.actionId}: it waits for another ${row.dataset.approver}.`
          : `${LABELS[decision]} is not offered for ${row.dataset.actionId}.`,
        true,
      );
      return;
    }
    pending = { rowId: row.id, actionId: row.dataset.actionId, decision, url: row.dataset.decideUrl, index: rows().indexOf(row) };
    $("#decide-title").textContent = `${LABELS[decision]}: ${row.dataset.title}`;
    $("#decide-what").textContent = row.dataset.actionId;
    const reason = $("#decide-reason");
    reason.value = "";
    const approveReason = row.dataset.approveReason || "";
    reason.required = decision !== "approve" || !!approveReason;
    $("#decide-required").textContent = !reason.required
      ? "(optional)"
      : decision === "approve"
        ? `(required to approve a ${approveReason} request)`
        : "(required)";
    showVotes(row, decision);
    $("#decide-confirm").textContent = LABELS[decision];
    $("#decide-error").hidden = true;
    dialog.showModal();
    reason.focus();
  }

  // Before an approval of a level that needs several: how many, who approved so far, and
  // whether this one completes it.
  function showVotes(row, decision) {
    const note = $("#decide-votes");
    if (!note) return;
    const needed = Number(row.dataset.approvalsNeeded || "1");
    note.hidden = decision !== "approve" || needed < 2;
    if (note.hidden) return;
    const voters = (row.dataset.voters || "").split(", ").filter(Boolean);
    const who = row.dataset.approver === "admin" ? "admins" : "reviewers";
    const soFar = voters.length ? `Approved so far by ${voters.join(", ")} (${voters.length} of ${needed}).` : "Nobody has approved it yet.";
    const after = voters.length + 1 >= needed
      ? "Your approval completes it."
      : `Your approval is ${voters.length + 1} of ${needed}: the request stays pending until another of the ${who} approves.`;
    note.textContent = `This request needs ${needed} approvals by different ${who}. ${soFar} ${after}`;
  }

  function sendDecision() {
    const dialog = $("#decide-dialog");
    const reason = $("#decide-reason");
    if (!pending) return;
    if (reason.required && !reason.value.trim()) {
      const error = $("#decide-error");
      const approveReason = pending.decision === "approve" ? (document.getElementById(pending.rowId) || { dataset: {} }).dataset.approveReason : "";
      error.textContent = approveReason
        ? `A reason is required to approve a ${approveReason} request: it is recorded with the approval.`
        : "A reason is required to reject or quarantine.";
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
        const stayed = rowFor(decision.actionId); // a vote, or a conflict saying who decided first
        if (!stayed || !stayed.querySelector("input[name=action_ids]:checked")) kept.checked.delete(decision.actionId);
        updateBulkCount();
        moveOnFrom(stayed ? rows().indexOf(stayed) : index, !!stayed);
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

  function openTab(key) {
    const link = $(`nav.tabs a[data-key="${key}"]`);
    if (link) window.location.assign(link.href);
  }

  // The detail page is opened with the queue's address remembering the row: back from it
  // (the browser's, or the detail page's link with ?selected=<action id>) selects it again.
  function rememberSelected(row) {
    const url = new URL(window.location.href);
    url.searchParams.set("selected", row.dataset.actionId);
    window.history.replaceState(window.history.state, "", url);
  }

  function restoreSelected() {
    const url = new URL(window.location.href);
    const wanted = url.searchParams.get("selected") || decodeURIComponent(url.hash.replace(/^#selected=/, "")) || "";
    const row = wanted ? rowFor(wanted) : null;
    if (row) select(row);
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if ($$("dialog[open]").length) return; // the dialog handles its own keys; Esc closes it
    if (typing(event.target) || !$("#results")) return;
    const row = currentRow();
    switch (event.key) {
      case "/":
        $("#id_q").focus();
        $("#id_q").select();
        break;
      case "1":
      case "2":
      case "3":
        openTab(event.key);
        break;
      case "X":
        toggleRange(row);
        break;
      case "*":
        toggleAll();
        break;
      case "j":
        move(1);
        break;
      case "k":
        move(-1);
        break;
      case "Enter":
        if (!row || event.target.closest("a, button, summary")) return;
        rememberSelected(row);
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
    } else if (row && event.target.closest("a.title")) {
      rememberSelected(row);
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

  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt;
    if (!form || form.id !== "bulk-form" || !event.detail.successful) return;
    if ($("#bulk-result .bulk-outcomes")) $("#bulk-reason").value = ""; // decided: a reason is for one batch
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
      else if (kept.index >= 0 && kept.focusInRows) moveOnFrom(kept.index, false);
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
    restoreSelected();
    updateBulkCount();
    tick();
    window.setInterval(tick, 1000);
  });
})();
