/* Counter console: one officer at one counter. Everything goes through the HTTP API; the live
   stream only tells the page that something changed. */
"use strict";
(async () => {
  const { api, $, el, showError, signIn, stream, badge, beep, TICKET_STATUS, DOSSIER_STATUS } = Luot;
  const centre = await api("GET", "/api/v1/centre");
  // Signing in may name the counter to work at: it opens for this officer and only they act on it.
  const me = await signIn(["officer", "manager"], { counters: centre.counters });
  $("#logout").hidden = false; $("#logout").onclick = Luot.logout;
  $("#password").hidden = false; $("#password").onclick = () => Luot.changePassword(false);
  Luot.watchClock($("#clock"), false);  // read-only here: a manager confirms on the dashboard
  const groups = Object.fromEntries(centre.groups.map((g) => [g.code, g]));
  const counterNames = Object.fromEntries(centre.counters.map((c) => [c.number, c.name]));
  const select = $("#counter");
  for (const c of centre.counters) select.append(el("option", { value: c.number }, c.name));
  for (const g of centre.groups) $("#to-group").append(el("option", { value: g.code }, g.name));
  for (const c of centre.counters) $("#to-counter").append(el("option", { value: c.number }, c.name));
  for (const [code, text] of Object.entries(DOSSIER_STATUS)) $("#dossier-status").append(el("option", { value: code }, text));
  // Which counter: the one this sign-in works at, else one this officer holds open, else the one
  // they held last (from the server, not this browser) — never silently counter 1.
  const start = me.counter || (me.held && me.held[0]) || me.last_counter;
  if (start && centre.counters.some((c) => c.number === start)) select.value = String(start);
  let view = null;           // this counter's view from the latest snapshot
  let lastDossier = null;

  const counter = () => Number(select.value);
  select.onchange = () => { view = null; refresh(); };

  const groupName = (code) => (groups[code] ? groups[code].name : code);
  const clock = () => new Date().toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit" });
  /* The line under the current ticket: what just happened, in words (Vietnamese, then English). */
  function said(vi, en) {
    $("#last-action").replaceChildren(`${clock()} · ${vi} `, el("span", { class: "en", lang: "en" }, en));
  }
  function describe(action, answer, body) {
    const n = counter(), t = answer && answer.ticket;
    const num = t ? t.number : "";
    switch (action) {
      case "open": return said(`Đã mở ${counterNames[n] || "quầy " + n}.`, `Counter ${n} opened.`);
      case "close": return said(`Đã đóng ${counterNames[n] || "quầy " + n}.`, `Counter ${n} closed.`);
      case "call-next": case "call":
        return t ? said(`Đã gọi số ${num} (${groupName(t.group)}).`, `Called ${num}.`)
          : said("Không còn ai chờ cho quầy này.", "Nobody is waiting for this counter.");
      case "recall":
        return t && t.status === "no_show" ? said(`Số ${num} vắng mặt sau nhiều lần gọi.`, `${num} marked absent after repeated calls.`)
          : said(`Đã gọi lại số ${num}.`, `Called ${num} again.`);
      case "no-show": return said(`Số ${num} được đánh dấu vắng mặt.`, `${num} marked absent.`);
      case "start": return said(`Bắt đầu phục vụ số ${num}.`, `Serving ${num}.`);
      case "finish": return said(`Đã phục vụ xong số ${num}.`, `${num} finished.`);
      case "pause": return said("Quầy tạm dừng.", "Counter paused.");
      case "resume": return said("Quầy làm việc lại.", "Counter resumed.");
      case "transfer":
        return body.counter ? said(`Đã chuyển số ${num} sang quầy ${body.counter}.`, `${num} moved to counter ${body.counter}.`)
          : said(`Đã chuyển số ${num} sang lĩnh vực ${groupName(body.group)}.`, `${num} moved to ${groupName(body.group)}.`);
      case "take-over": return said(`Bạn đã nhận quầy ${n}.`, `You took over counter ${n}.`);
      default: return null;
    }
  }

  async function act(action, body) {
    showError(null);
    if (!counter()) { select.focus(); showError({ message: "Hãy chọn quầy trước.", en: "Choose a counter first." }); return null; }
    try {
      const path = `/api/v1/counters/${counter()}/${action}`;
      const answer = await api("POST", path, body);
      if (answer && answer.counter) render(answer.counter);
      describe(action, answer, body || {});
      loadWaiting();
      return answer;
    } catch (e) { showError(e); return null; }
  }

  function render(counterView) {
    view = counterView;
    const status = view.status;
    $("#counter-status").replaceChildren(badge(status), view.officer ? ` ${view.officer}` : "");
    $("#current-number").textContent = view.number ?? "–";
    $("#current-info").textContent = view.number
      ? `${groups[view.group] ? groups[view.group].name : view.group} — ${TICKET_STATUS[view.ticket_status] || view.ticket_status}`
      : (status === "closed" ? "Quầy chưa mở" : (view.last_ticket_id ? "Đã xong số trước — bấm Gọi số tiếp (N)" : "Chưa gọi số nào"));
    const open = status !== "closed", paused = status === "paused";
    const has = !!view.ticket_id, called = view.ticket_status === "called";
    const enable = { "call-next": open && !paused && !called, recall: open && !paused && called, start: open && !paused && called,
      finish: open && !paused && has, "no-show": open && !paused && called };
    for (const b of document.querySelectorAll(".actions button[data-action]")) {
      if (b.id === "pause") continue;
      b.disabled = !enable[b.dataset.action];
    }
    const pause = $("#pause");
    pause.disabled = !open;
    pause.dataset.action = paused ? "resume" : "pause";
    pause.replaceChildren(paused ? "Tiếp tục " : "Tạm dừng ", el("kbd", {}, "P"));
    // Held by someone else: say by whom; only a manager may take it over.
    const other = open && view.officer && view.officer !== me.username;
    $("#holder").hidden = !other;
    if (other) $("#holder").replaceChildren(`Quầy ${view.counter} đang do ${view.officer} phụ trách. `,
      el("span", { class: "en", lang: "en" }, `Counter ${view.counter} is held by ${view.officer}.`));
    $("#take-over").hidden = !(other && me.role === "manager");
    if (other) for (const b of document.querySelectorAll(".actions button")) b.disabled = true;
    $("#transfer").disabled = !has || paused || other;
    $("#open").disabled = open; $("#close").disabled = !open || other;
    $("#dossier-attach").disabled = !(view.ticket_id || view.last_ticket_id) || other;
  }

  /* Remote numbers and appointments (docs/bookings.md): which kind, and whether the citizen has
     checked in; a remote number not here yet keeps its place but cannot be called. */
  function bookingMark(t) {
    if (!t.booking) return "";
    const kind = t.booking === "remote" ? "Trực tuyến" : "Hẹn";
    const here = t.checked_in ? "đã đến" : t.held ? "tới lượt, chưa đến" : "chưa đến";
    return el("span", { class: "booking " + (t.checked_in ? "here" : "away"), "data-booking": t.booking },
      `${t.booking === "remote" ? "☎" : "◷"} ${kind} · ${here}`);
  }

  async function loadWaiting(background) {
    clearTimeout(loadWaiting.timer);
    loadWaiting.timer = setTimeout(async () => {
      try {
        if (!counter()) { $("#counter-status").textContent = "Hãy chọn quầy để làm việc. / Choose your counter."; return; }
        const data = await api("GET", `/api/v1/counters/${counter()}/waiting`, undefined, { background: background === true });
        if (!view || view.counter !== data.counter.counter) render(data.counter);
        $("#waiting-count").textContent = `(${data.waiting.length})`;
        $("#waiting").replaceChildren(...data.waiting.map((t) => el("tr", {},
          el("td", {}, el("strong", {}, t.number)),
          el("td", {}, groups[t.group] ? groups[t.group].name : t.group),
          el("td", { class: "num" }, Math.floor(t.waited_minutes) + " phút"),
          el("td", { class: "wait-range" }, t.wait_text || "–"),  // the same words as the ticket's tracking page
          el("td", {}, t.priority ? el("span", { class: "prio" }, "★ Ưu tiên ") : "", t.transferred ? "↪ Chuyển đến" : "", bookingMark(t)),
          el("td", {}, el("button", { type: "button", onclick: () => act("call", { ticket_id: t.id }),
            disabled: !t.checked_in || !view || view.status === "closed" || view.status === "paused" || view.ticket_status === "called"
              || (view.officer && view.officer !== me.username),
            "aria-label": `Gọi số ${t.number}` }, "Gọi")))));
        if (!data.waiting.length) $("#waiting").append(el("tr", {}, el("td", { colspan: 6 }, "Không có ai đang chờ. ", el("span", { class: "en", lang: "en" }, "Nobody waiting."))));
      } catch (e) { showError(e); }
    }, 150);
  }

  const REASONS = { help: "cần giúp đỡ", guided: "cần hướng dẫn từng bước", language: "cần hỗ trợ ngôn ngữ", other: "yêu cầu khác" };
  function assistance(event) {
    const d = event.data;
    $("#assist-text").textContent = `Thiết bị ${d.device}${d.counter ? " (quầy " + d.counter + ")" : ""}: ${REASONS[d.reason] || d.reason}.`;
    $("#assist").hidden = false;
    beep();
    $("#assist-ok").focus();
  }
  $("#assist-ok").onclick = () => { $("#assist").hidden = true; };

  function refresh() { loadWaiting(); }
  stream((update) => {
    const mine = update.snapshot.counters.find((c) => c.counter === counter());
    if (mine) render(mine);
    for (const event of update.events) {
      if (event.type === "assistance.requested") assistance(event);
      if (event.type === "counter.taken_over" && event.data.counter === counter() && event.data.by !== me.username) {
        said(`${event.data.by} đã giao quầy ${event.data.counter} cho ${event.data.to}.`,
          `${event.data.by} handed counter ${event.data.counter} to ${event.data.to}.`);
      }
    }
    loadWaiting(true);
  });
  setInterval(() => loadWaiting(true), 30000);  // waited minutes keep growing even when nothing happens

  $("#open").onclick = () => act("open");
  $("#take-over").onclick = () => act("take-over");
  $("#close").onclick = () => act("close");
  for (const b of document.querySelectorAll(".actions button[data-action]")) b.onclick = () => act(b.dataset.action);
  async function transfer() {
    const group = $("#to-group").value, to = $("#to-counter").value;
    if (!group && !to) { $("#to-group").focus(); showError({ message: "Hãy chọn lĩnh vực hoặc quầy để chuyển.", en: "Choose a group or a counter." }); return; }
    const answer = await act("transfer", { group: group || null, counter: to ? Number(to) : null });
    if (answer) { $("#to-group").value = ""; $("#to-counter").value = ""; }
  }
  $("#transfer").onclick = transfer;

  async function attachDossier(scanned) {
    const code = (typeof scanned === "string" ? scanned : $("#dossier-code").value).trim();
    const ticket = view && (view.ticket_id || view.last_ticket_id);
    if (!code) { $("#dossier-code").focus(); return; }
    showError(null);
    try {
      const d = await api("POST", `/api/v1/tickets/${ticket}/dossier`, { code });
      lastDossier = d.code;
      $("#dossier-code").value = d.code;  // a scanned receipt becomes its dossier code
      $("#dossier-info").textContent = `Hồ sơ ${d.code}: ${DOSSIER_STATUS[d.status] || d.status}` + (d.appointment ? ` — hẹn trả ${d.appointment}` : "");
      $("#dossier-status").value = d.status;
    } catch (e) { showError(e); }
  }
  $("#dossier-attach").onclick = () => attachDossier();
  // A USB scanner types the receipt's QR text and presses Enter. A QR of one labelled item a line
  // ("Mã hồ sơ: …", then "Ngày hẹn trả kết quả: …") arrives as several lines, each ended by an
  // Enter a few milliseconds after the last key; a text field keeps no line breaks, so the lines
  // gather here and go to the server together once Enter was the last key for SCAN_GAP_MS.
  const SCAN_GAP_MS = 250;
  let scanLines = [], scanTimer = null;
  $("#dossier-code").addEventListener("keydown", (ev) => {
    clearTimeout(scanTimer);  // any key after an Enter: the QR has more lines
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    const field = $("#dossier-code");
    if (field.value.trim()) scanLines.push(field.value.trim());
    field.value = "";
    scanTimer = setTimeout(() => { const text = scanLines.join("\n"); scanLines = []; attachDossier(text); }, SCAN_GAP_MS);
  });
  $("#dossier-update").onclick = async () => {
    const code = $("#dossier-code").value.trim() || lastDossier;
    if (!code) { $("#dossier-code").focus(); return; }
    showError(null);
    try {
      const d = await api("POST", `/api/v1/dossiers/${encodeURIComponent(code)}/status`, { status: $("#dossier-status").value });
      lastDossier = d.code;
      $("#dossier-info").textContent = `Hồ sơ ${d.code}: ${DOSSIER_STATUS[d.status] || d.status}`;
    } catch (e) { showError(e); }
  };

  const KEYS = { n: "call-next", r: "recall", s: "start", f: "finish", a: "no-show", p: "pause" };
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.altKey || ev.metaKey || ev.repeat) return;
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    const key = ev.key.toLowerCase();
    if (key === "t") { ev.preventDefault(); transfer(); return; }
    if (key === "d") { ev.preventDefault(); $("#dossier-code").focus(); return; }
    const action = KEYS[key];
    if (!action) return;
    const button = action === "pause" ? $("#pause") : document.querySelector(`.actions button[data-action="${action}"]`);
    if (button && !button.disabled) { ev.preventDefault(); button.click(); }
  });
  refresh();
})();
