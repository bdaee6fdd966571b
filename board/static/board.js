/* OrderHub board client: drag (or press M / the move button) to move a card one stage on, the order drawer,
   and live refresh over server-sent events. Plain JavaScript, served by OrderHub itself; no build step. */
(function () {
  "use strict";
  var W = JSON.parse(document.getElementById("words").textContent);
  var base = document.body.dataset.base || "";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var board = document.getElementById("board");
  var drawer = document.getElementById("drawer");
  var toastEl = document.getElementById("toast");
  var query = board.dataset.query || "";
  var filterBox = document.getElementById("filter-box");
  if (filterBox && window.matchMedia("(min-width: 701px)").matches) filterBox.open = true;  // phones start folded
  var openOrder = null, lastFocus = null, toastTimer = null, refreshTimer = null, busy = 0;
  var drawerSeq = 0;  /* a drawer answer applies only if no close or newer load came after its request */

  function toast(text, isError) {
    toastEl.textContent = text;
    toastEl.className = "toast" + (isError ? " error" : "");
    toastEl.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toastEl.hidden = true; }, 6000);
  }

  function post(path, body) {
    return fetch(base + path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { return { ok: r.ok, status: r.status, data: data }; });
    });
  }

  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      if (busy) { refresh(); return; }
      var focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest(".card");
      focusedId = focusedId ? focusedId.dataset.id : null;
      fetch(base + "/columns" + (query ? "?" + query : ""), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401) { location.reload(); return null; }  // signed out: show the sign-in page
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html === null) return;
          board.innerHTML = html;
          board.dataset.version = String(Number(board.dataset.version || 0) + 1);
          if (focusedId) { var c = board.querySelector('.card[data-id="' + focusedId + '"]'); if (c) c.focus(); }
        });
      if (openOrder) loadDrawer(openOrder, false);
    }, 250);
  }

  /* --- moving ------------------------------------------------------------------------------------------------ */
  function moveCard(card, to) {
    if (!to || card.dataset.stage === to) return;
    var from = card.parentNode, next = card.nextSibling;
    var target = board.querySelector('.cards[data-stage="' + to + '"]');  // none for `completed`: off the board
    busy++;
    if (target) target.insertBefore(card, target.firstChild);  // optimistic; snapped back when refused
    else card.hidden = true;
    post("/orders/" + card.dataset.id + "/move", { to: to }).then(function (res) {
      busy--;
      if (res.ok) { toast(res.data.message || ""); refresh(); return; }
      card.hidden = false;
      from.insertBefore(card, next);
      card.classList.add("refused");
      card.setAttribute("data-refused", res.data.detail || "");
      setTimeout(function () { card.classList.remove("refused"); }, 600);
      toast(res.data.detail || String(res.status), true);
      card.focus();
    }, function () { busy--; card.hidden = false; from.insertBefore(card, next); toast(W.offline, true); });
  }

  var dragged = null;
  board.addEventListener("dragstart", function (e) {
    var card = e.target.closest && e.target.closest(".card");
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.dataset.id);
  });
  board.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    board.querySelectorAll(".drop-ok").forEach(function (c) { c.classList.remove("drop-ok"); });
  });
  board.addEventListener("dragover", function (e) {
    var col = e.target.closest && e.target.closest(".column");
    if (!col || !dragged || col.dataset.stage === dragged.dataset.stage) return;
    e.preventDefault();  // any other column accepts the drop; the server says whether the move is allowed
    e.dataTransfer.dropEffect = "move";
    col.classList.add("drop-ok");
  });
  board.addEventListener("dragleave", function (e) {
    var col = e.target.closest && e.target.closest(".column");
    if (col && !col.contains(e.relatedTarget)) col.classList.remove("drop-ok");
  });
  board.addEventListener("drop", function (e) {
    var col = e.target.closest && e.target.closest(".column");
    if (!col || !dragged) return;
    e.preventDefault();
    col.classList.remove("drop-ok");
    moveCard(dragged, col.dataset.stage);
  });

  board.addEventListener("click", function (e) {
    var btn = e.target.closest("button");
    if (!btn) return;
    var card = btn.closest(".card");
    if (btn.dataset.move && card) { moveCard(card, btn.dataset.move); return; }
    if (btn.dataset.open) { loadDrawer(btn.dataset.open, true); return; }
    if (btn.dataset.more) { loadMore(btn); }
  });
  board.addEventListener("keydown", function (e) {
    var card = e.target.classList && e.target.classList.contains("card") ? e.target : null;
    if (!card) return;
    if (e.key === "m" || e.key === "M") { e.preventDefault(); moveCard(card, card.dataset.next); }
    else if (e.key === "Enter" || e.key === " ") { e.preventDefault(); loadDrawer(card.dataset.id, true); }
  });

  function loadMore(btn) {
    var sep = query ? "&" : "";
    fetch(base + "/column/" + btn.dataset.more + "?" + query + sep + "offset=" + btn.dataset.offset,
          { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        var row = btn.closest("li");
        var tmp = document.createElement("ol");
        tmp.innerHTML = html;
        var list = row.parentNode;
        while (tmp.firstChild) list.insertBefore(tmp.firstChild, row);
        row.remove();
      });
  }

  /* --- the drawer -------------------------------------------------------------------------------------------- */
  /* A reload of the open drawer (live, or after saving one of its forms) re-renders it while someone may be halfway
     through a note, a reason or a category pick: what they changed, and where the caret was, is carried over to the
     fresh copy of the same form. */
  function formKey(form) { return form.className + "|" + (form.dataset.note || form.dataset.approval || ""); }
  function edited(el) {
    if (el.tagName === "SELECT") {
      return Array.prototype.some.call(el.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    return "defaultValue" in el && el.value !== el.defaultValue;
  }
  function drawerEdits() {
    var edits = [], active = document.activeElement, focused = null;
    Array.prototype.forEach.call(drawer.querySelectorAll("form"), function (form) {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name) return;
        if (edited(el)) edits.push({ form: formKey(form), name: el.name, value: el.value, checked: el.checked });
        if (el === active) focused = { form: formKey(form), name: el.name, start: el.selectionStart, end: el.selectionEnd };
      });
    });
    return { edits: edits, focused: focused };
  }
  function field(key, name) {
    var forms = drawer.querySelectorAll("form");
    for (var i = 0; i < forms.length; i++) {
      if (formKey(forms[i]) === key && forms[i].elements[name]) return forms[i].elements[name];
    }
    return null;
  }
  function settled(form) {
    /* Saved: the live copy of that form (a live reload may have replaced it meanwhile) goes back to its defaults,
       so a reload still on its way does not carry the sent text over again. */
    var key = formKey(form);
    Array.prototype.forEach.call(drawer.querySelectorAll("form"), function (f) { if (formKey(f) === key) f.reset(); });
  }
  function restoreEdits(kept) {
    kept.edits.forEach(function (e) {
      var el = field(e.form, e.name);
      if (!el) return;  /* that form is gone (the approval was decided meanwhile): nothing to carry over */
      if (el.type === "checkbox" || el.type === "radio") el.checked = e.checked; else el.value = e.value;
    });
    var f = kept.focused && field(kept.focused.form, kept.focused.name);
    if (f) {
      f.focus();
      if (kept.focused.start !== null && f.setSelectionRange) {
        try { f.setSelectionRange(kept.focused.start, kept.focused.end); } catch (err) { /* not a text field */ }
      }
    }
  }

  function loadDrawer(id, focus) {
    if (focus) lastFocus = document.activeElement;
    var seq = ++drawerSeq;
    return fetch(base + "/orders/" + id, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (seq !== drawerSeq) return;  /* closed or superseded while loading (a live reload after Escape) */
        if (html === null) { closeDrawer(); return; }
        var kept = openOrder === id ? drawerEdits() : null;  /* the same order again: keep edits */
        openOrder = id;
        drawer.innerHTML = html;
        drawer.hidden = false;
        if (kept) restoreEdits(kept);
        if (focus) { var b = drawer.querySelector("[data-close]"); if (b) b.focus(); }
      });
  }
  function closeDrawer() {
    drawerSeq++;
    drawer.hidden = true;
    drawer.innerHTML = "";
    openOrder = null;
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }
  drawer.addEventListener("click", function (e) {
    if (e.target.closest("[data-close]")) closeDrawer();
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape" && !drawer.hidden) closeDrawer(); });
  drawer.addEventListener("submit", function (e) {
    e.preventDefault();
    var form = e.target, id = openOrder;
    if (form.classList.contains("note")) {
      post("/orders/" + id + "/notes", { text: form.elements.text.value }).then(function (res) {
        toast(res.ok ? res.data.message : (res.data.detail || String(res.status)), !res.ok);
        if (res.ok) { settled(form); loadDrawer(id, false); }
      });
    } else if (form.classList.contains("relabel")) {
      post("/notes/" + form.dataset.note + "/category", { category: form.elements.category.value }).then(function (res) {
        toast(res.ok ? res.data.message : (res.data.detail || String(res.status)), !res.ok);
        if (res.ok) { settled(form); loadDrawer(id, false); }
      });
    } else if (form.classList.contains("decide")) {
      var decision = e.submitter ? e.submitter.value : "approve";
      post("/approvals/" + form.dataset.approval + "/decision",
           { decision: decision, reason: form.elements.reason.value }).then(function (res) {
        toast(res.ok ? res.data.message : (res.data.detail || String(res.status)), !res.ok);
        if (res.ok) { settled(form); loadDrawer(id, false); refresh(); }
      });
    }
  });

  /* --- live -------------------------------------------------------------------------------------------------- */
  var live = document.getElementById("live");
  function connect() {
    if (!window.EventSource) return;
    var es = new EventSource(base + "/events");
    var lost = false;  // after a lost stream, reload the columns: events published meanwhile were missed
    es.onopen = function () {
      live.textContent = W.live; live.className = "live on";
      if (lost) { lost = false; refresh(); }
    };
    es.onerror = function () { lost = true; live.textContent = W.offline; live.className = "live"; };
    es.addEventListener("change", function () { refresh(); });
  }
  connect();
})();
