/* The clock warning (docs/architecture.md, "Time and commits"). While the engine refuses commands
   as clock_suspect, nothing a counter or kiosk does goes through, so the page says so where staff
   look: the refusal's words, the server's time and the last recorded event. A manager may confirm
   the clock after a confirm step (the dashboard); an officer is told to ask one (the console).
   Checked on load, every 30 s, at once when any command comes back clock_suspect (common.js
   fires "luot:clock-suspect"), and when the live stream carries a clock.confirmed event
   ("luot:clock-changed"), so the console's warning goes as soon as a manager confirms. */
"use strict";
Luot.watchClock = function (box, canConfirm) {
  const { api, el, showError } = Luot;
  /* "HH:MM:SS DD/MM/YYYY" at the centre's offset (taken from the server's now_local), whatever
     the browser's own time zone is. */
  function local(iso, offsetMinutes) {
    const d = new Date(new Date(iso).getTime() + offsetMinutes * 60000).toISOString();
    return `${d.slice(11, 19)} ${d.slice(8, 10)}/${d.slice(5, 7)}/${d.slice(0, 4)}`;
  }
  function offsetOf(isoLocal) {
    const m = /([+-])(\d\d):(\d\d)$/.exec(isoLocal);
    return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  }
  function show(status) {
    if (!status.needs_confirmation) { box.hidden = true; box.replaceChildren(); return; }
    const offset = offsetOf(status.now_local);
    const last = status.last_event_at ? local(status.last_event_at, offset) : "–";
    const parts = [
      el("p", { class: "clock-reason" }, status.reason.message, " ", el("span", { class: "en", lang: "en" }, status.reason.message_en)),
      el("p", { class: "clock-times" }, "Giờ máy chủ ", el("strong", { "data-clock": "now" }, local(status.now, offset)),
        " · sự kiện cuối ", el("strong", { "data-clock": "last" }, last), " ",
        el("span", { class: "en", lang: "en" }, "Server time · last recorded event"))];
    if (canConfirm) {
      const ask = el("button", { type: "button", class: "clock-confirm" }, "Xác nhận đồng hồ đúng ",
        el("span", { class: "en", lang: "en" }, "Confirm the clock is right"));
      const question = el("div", { class: "confirm clock-question", role: "group", hidden: true },
        el("p", {}, `Anh/chị đã so giờ máy chủ (${local(status.now, offset)}) với một đồng hồ thật và thấy đúng? Hàng chờ sẽ tiếp tục từ giờ này. `,
          el("span", { class: "en", lang: "en" }, "Have you checked the server time against a real clock? The queue goes on from this time.")),
        el("button", { type: "button", class: "clock-yes", onclick: confirmClock }, "Đúng, xác nhận ", el("span", { class: "en", lang: "en" }, "Yes, confirm")),
        el("button", { type: "button", class: "clock-no", onclick: () => { question.hidden = true; ask.hidden = false; ask.focus(); } },
          "Huỷ ", el("span", { class: "en", lang: "en" }, "Cancel")));
      ask.onclick = () => { ask.hidden = true; question.hidden = false; question.querySelector(".clock-yes").focus(); };
      parts.push(el("p", {}, ask), question);
    } else {
      parts.push(el("p", { class: "clock-ask" }, "Báo quản lý xác nhận đồng hồ. ",
        el("span", { class: "en", lang: "en" }, "Ask a manager to confirm the clock.")));
    }
    box.replaceChildren(...parts);
    box.hidden = false;
  }
  async function check() {
    try { show(await api("GET", "/api/v1/day/clock", undefined, { background: true })); } catch (e) { /* the next check tells */ }
  }
  async function confirmClock() {
    try { await api("POST", "/api/v1/day/confirm-clock"); } catch (e) { showError(e); }
    check();
  }
  window.addEventListener("luot:clock-suspect", check);
  window.addEventListener("luot:clock-changed", check);
  check();
  setInterval(check, 30000);
};
