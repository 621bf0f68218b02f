/* Shared by the staff pages: API calls with plain-word errors, login, live stream. No framework. */
"use strict";
const Luot = (() => {
  let signedIn = false;  // once the page has a session, losing it (idle time, reset) reloads to the sign-in form
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || "Lỗi không xác định");
      this.status = status; this.code = body && body.error; this.en = body && body.message_en;
    }
  }
  /* options.background: a refresh nobody asked for (timers, live updates); it does not count as
     activity, so an unattended console still signs out after the idle time. */
  async function api(method, path, body, options) {
    let res;
    const headers = body === undefined ? {} : { "Content-Type": "application/json" };
    if (options && options.background) headers["X-Luot-Background"] = "1";
    try {
      res = await fetch(path, { method, credentials: "same-origin", headers,
        body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, { error: "network", message: "Mất kết nối tới máy chủ trung tâm.", message_en: "Lost connection to the centre server." });
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && data && data.error === "unauthorised" && signedIn) location.reload();  // session ended: sign in again
    // a refused clock: the page's clock warning (clock.js) checks at once instead of at its next tick
    if (!res.ok && data && data.error === "clock_suspect") window.dispatchEvent(new Event("luot:clock-suspect"));
    if (!res.ok) throw new ApiError(res.status, data || { message: "Lỗi máy chủ (" + res.status + ")", message_en: "Server error" });
    return data;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c.nodeType ? c : String(c));
    return node;
  }
  function showError(err) {
    const box = $("#error");
    if (!box) return;
    if (!err) { box.hidden = true; return; }
    if (err.code === "clock_suspect" && $("#clock")) return;  // the page's clock warning says it, once (clock.js)
    box.replaceChildren(el("span", {}, err.message || String(err)), " ", err.en ? el("span", { class: "en", lang: "en" }, err.en) : "");
    box.hidden = false;
    clearTimeout(showError.timer);
    showError.timer = setTimeout(() => { box.hidden = true; }, 8000);
  }
  /* Resolves with the signed-in user once they have one of `roles`; shows the login form until then.
     A one-time password (first sign-in, or reset by a manager) must be changed first: the server
     refuses everything else (403 password_change_required) and the change form shows instead.
     options.counters: offer "work at counter" on the form (the console); its choice opens it. */
  async function signIn(roles, options) {
    const app = $("#app"), form = $("#login-form"), panel = $("#login");
    const counters = (options && options.counters) || [];
    if (counters.length) {
      const pick = form.counter;
      for (const c of counters) pick.append(el("option", { value: c.number }, c.name));
      $("#login-counter").hidden = false;
    }
    for (;;) {
      try {
        const me = await api("GET", "/api/v1/me");
        if (roles.includes(me.role)) {
          panel.hidden = true; app.hidden = false; signedIn = true;
          const who = $("#who"); if (who) who.textContent = me.username;
          return me;
        }
        $("#login-error").textContent = "Tài khoản này không có quyền xem trang này. / This account may not open this page.";
      } catch (e) {
        if (e.code === "password_change_required") { await changePassword(true); continue; }
        if (e.status !== 401) { $("#login-error").textContent = e.message; }
      }
      panel.hidden = false; app.hidden = true;
      const answer = await new Promise((resolve) => {
        form.onsubmit = async (ev) => {
          ev.preventDefault();
          const body = { username: form.username.value.trim(), password: form.password.value };
          if (counters.length && form.counter.value) body.counter = Number(form.counter.value);
          try {
            const done = await api("POST", "/api/v1/login", body);
            $("#login-error").textContent = ""; form.password.value = ""; resolve(done);
          } catch (e) { $("#login-error").textContent = e.message + (e.en ? " / " + e.en : ""); }
        };
      });
      panel.hidden = true;
      if (answer.must_change_password && await changePassword(true) && counters.length && form.counter.value) {
        // the counter chosen at sign-in could not open before the password was changed: open it now
        try { await api("POST", `/api/v1/counters/${Number(form.counter.value)}/open`); } catch (e) { showError(e); }
      }
    }
  }
  /* Shows the change-password form; resolves true once changed (false if cancelled). `forced`:
     the user holds a one-time password and cannot do anything else until it is changed. */
  function changePassword(forced) {
    const box = $("#pwchange"), form = $("#pw-form"), app = $("#app"), cancel = $("#pw-cancel");
    box.hidden = false; app.hidden = true; $("#pw-error").textContent = "";
    $("#pw-why").textContent = forced
      ? "Mật khẩu hiện tại chỉ dùng một lần: hãy đặt mật khẩu mới (đủ dài, khác tên đăng nhập). / Your password is a one-time one: choose a new one."
      : "Các phiên đăng nhập khác của bạn sẽ kết thúc. / Your other sessions will end.";
    cancel.hidden = forced;
    form.old.focus();
    return new Promise((resolve) => {
      const finish = (changed) => { form.reset(); box.hidden = true; if (!forced) app.hidden = false; resolve(changed); };
      cancel.onclick = () => finish(false);
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        if (form.new.value !== form.again.value) {
          $("#pw-error").textContent = "Hai lần nhập mật khẩu mới không khớp. / The new passwords differ."; return;
        }
        try {
          await api("POST", "/api/v1/password", { old_password: form.old.value, new_password: form.new.value });
          finish(true);
        } catch (e) { $("#pw-error").textContent = e.message + (e.en ? " / " + e.en : ""); }
      };
    });
  }
  async function logout() { try { await api("POST", "/api/v1/logout"); } finally { location.reload(); } }
  /* EventSource with a status light; onUpdate gets {snapshot, events}. */
  function stream(onUpdate) {
    const light = $("#live");
    const source = new EventSource("/api/v1/stream");
    source.addEventListener("update", (ev) => {
      const update = JSON.parse(ev.data);
      /* a manager confirmed the clock (on any page): every page's clock warning looks again now */
      if ((update.events || []).some((e) => e.type === "clock.confirmed")) window.dispatchEvent(new Event("luot:clock-changed"));
      onUpdate(update);
    });
    source.onopen = () => { if (light) { light.className = "live on"; light.textContent = "Trực tuyến"; } };
    source.onerror = () => { if (light) { light.className = "live off"; light.textContent = "Mất kết nối, đang thử lại…"; } };
    return source;
  }
  const COUNTER_STATUS = { closed: "Đóng", idle: "Đang rảnh", calling: "Đang gọi", serving: "Đang phục vụ", paused: "Tạm dừng" };
  const TICKET_STATUS = { waiting: "Đang chờ", called: "Đã gọi", serving: "Đang phục vụ", done: "Đã xong",
    no_show: "Vắng mặt", cancelled: "Đã huỷ", expired: "Hết hiệu lực" };
  const DOSSIER_STATUS = { received: "Đã tiếp nhận", processing: "Đang xử lý", needs_documents: "Cần bổ sung giấy tờ",
    ready: "Đã có kết quả, chờ trả", returned: "Đã trả kết quả" };
  function badge(status) { return el("span", { class: "badge b-" + status }, COUNTER_STATUS[status] || status); }
  function minutes(m) { return m === null || m === undefined ? "–" : Math.round(m) + " phút"; }
  function beep() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      const ctx = beep.ctx || (beep.ctx = new Ctx());
      if (ctx.state === "suspended") ctx.resume();
      [0, 0.25].forEach((at, i) => {
        const osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.frequency.value = i ? 660 : 880; osc.type = "sine";
        gain.gain.setValueAtTime(0.0001, ctx.currentTime + at);
        gain.gain.exponentialRampToValueAtTime(0.3, ctx.currentTime + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + at + 0.22);
        osc.connect(gain).connect(ctx.destination); osc.start(ctx.currentTime + at); osc.stop(ctx.currentTime + at + 0.25);
      });
      return true;
    } catch (e) { return false; }
  }
  return { api, $, el, showError, signIn, changePassword, logout, stream, badge, minutes, beep, COUNTER_STATUS, TICKET_STATUS, DOSSIER_STATUS };
})();
