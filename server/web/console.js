/* Counter console: one officer at one counter. Everything goes through the HTTP API; the live
   stream only tells the page that something changed. */
"use strict";
(async () => {
  const { api, $, el, showError, signIn, stream, badge, beep, TICKET_STATUS, DOSSIER_STATUS } = Luot;
  const me = await signIn(["officer", "manager"]);
  $("#logout").hidden = false; $("#logout").onclick = Luot.logout;
  const centre = await api("GET", "/api/v1/centre");
  const groups = Object.fromEntries(centre.groups.map((g) => [g.code, g]));
  const select = $("#counter");
  for (const c of centre.counters) select.append(el("option", { value: c.number }, c.name));
  for (const g of centre.groups) $("#to-group").append(el("option", { value: g.code }, g.name));
  for (const c of centre.counters) $("#to-counter").append(el("option", { value: c.number }, c.name));
  for (const [code, text] of Object.entries(DOSSIER_STATUS)) $("#dossier-status").append(el("option", { value: code }, text));
  const saved = localStorage.getItem("luot.counter");
  if (saved && centre.counters.some((c) => String(c.number) === saved)) select.value = saved;
  let view = null;           // this counter's view from the latest snapshot
  let lastDossier = null;

  const counter = () => Number(select.value);
  select.onchange = () => { localStorage.setItem("luot.counter", select.value); view = null; refresh(); };

  async function act(action, body) {
    showError(null);
    try {
      const path = `/api/v1/counters/${counter()}/${action}`;
      const answer = await api("POST", path, body);
      if (answer && answer.counter) render(answer.counter);
      if (action === "call-next" && answer && !answer.ticket) {
        showError({ message: "Không còn ai chờ cho quầy này.", en: "Nobody is waiting for this counter." });
      }
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
    $("#transfer").disabled = !has || paused;
    $("#open").disabled = open; $("#close").disabled = !open;
    $("#dossier-attach").disabled = !(view.ticket_id || view.last_ticket_id);
  }

  async function loadWaiting() {
    clearTimeout(loadWaiting.timer);
    loadWaiting.timer = setTimeout(async () => {
      try {
        const data = await api("GET", `/api/v1/counters/${counter()}/waiting`);
        if (!view || view.counter !== data.counter.counter) render(data.counter);
        $("#waiting-count").textContent = `(${data.waiting.length})`;
        $("#waiting").replaceChildren(...data.waiting.map((t) => el("tr", {},
          el("td", {}, el("strong", {}, t.number)),
          el("td", {}, groups[t.group] ? groups[t.group].name : t.group),
          el("td", { class: "num" }, Math.floor(t.waited_minutes) + " phút"),
          el("td", {}, t.priority ? el("span", { class: "prio" }, "★ Ưu tiên ") : "", t.transferred ? "↪ Chuyển đến" : ""),
          el("td", {}, el("button", { type: "button", onclick: () => act("call", { ticket_id: t.id }),
            disabled: !view || view.status === "closed" || view.status === "paused" || view.ticket_status === "called",
            "aria-label": `Gọi số ${t.number}` }, "Gọi")))));
        if (!data.waiting.length) $("#waiting").append(el("tr", {}, el("td", { colspan: 5 }, "Không có ai đang chờ. ", el("span", { class: "en", lang: "en" }, "Nobody waiting."))));
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
    for (const event of update.events) if (event.type === "assistance.requested") assistance(event);
    loadWaiting();
  });
  setInterval(loadWaiting, 30000);  // waited minutes keep growing even when nothing happens

  $("#open").onclick = () => act("open");
  $("#close").onclick = () => act("close");
  for (const b of document.querySelectorAll(".actions button[data-action]")) b.onclick = () => act(b.dataset.action);
  async function transfer() {
    const group = $("#to-group").value, to = $("#to-counter").value;
    if (!group && !to) { $("#to-group").focus(); showError({ message: "Hãy chọn lĩnh vực hoặc quầy để chuyển.", en: "Choose a group or a counter." }); return; }
    const answer = await act("transfer", { group: group || null, counter: to ? Number(to) : null });
    if (answer) { $("#to-group").value = ""; $("#to-counter").value = ""; }
  }
  $("#transfer").onclick = transfer;

  async function attachDossier() {
    const code = $("#dossier-code").value.trim();
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
  $("#dossier-attach").onclick = attachDossier;
  // a USB scanner types the receipt's QR text and presses Enter
  $("#dossier-code").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); attachDossier(); } });
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
