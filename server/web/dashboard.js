/* Manager dashboard: live over the staff event stream; hourly charts from the rollups. */
"use strict";
(async () => {
  const { api, $, el, showError, signIn, stream, badge, minutes } = Luot;
  const me = await signIn(["manager"]);
  $("#logout").hidden = false; $("#logout").onclick = Luot.logout;
  Luot.watchClock($("#clock"), true);  // a manager confirms a suspect clock here (clock.js)
  const [centre, settings] = await Promise.all([api("GET", "/api/v1/centre"), api("GET", "/api/v1/dashboard")]);
  const groupName = Object.fromEntries(centre.groups.map((g) => [g.code, g.name]));
  let snapshot = null, receivedAt = 0;

  function render() {
    if (!snapshot) return;
    const extra = (Date.now() - receivedAt) / 60000;  // waits keep growing between commits
    const groups = Object.entries(snapshot.groups).map(([code, g]) => ({ code, ...g,
      longest: g.waiting ? g.longest_wait_minutes + extra : 0, threshold: settings.wait_alert_minutes[code] }));
    $("#s-waiting").textContent = snapshot.waiting_total;
    const longest = groups.reduce((m, g) => Math.max(m, g.longest), 0);
    $("#s-longest").textContent = minutes(longest);
    const cs = snapshot.counters;
    const open = cs.filter((c) => c.status !== "closed").length;
    $("#s-counters").textContent = `${open} / ${cs.filter((c) => c.status === "paused").length} / ${cs.filter((c) => c.status === "idle").length}`;
    $("#groups").replaceChildren(...groups.map((g) => el("tr", {},
      el("th", { scope: "row" }, groupName[g.code] || g.code),
      el("td", { class: "num" }, g.waiting), el("td", { class: "num" }, g.priority_waiting),
      el("td", { class: "num" }, g.waiting ? minutes(g.longest) : "–", " ",
        g.waiting && g.longest >= g.threshold ? el("span", { class: "badge b-alert" }, "Quá " + g.threshold + " phút") : ""),
      el("td", { class: "wait-range" }, g.wait_text || "–"))));  // what the group's last in line is told (tracking page words)
    $("#counters").replaceChildren(...cs.map((c) => el("tr", { "data-counter": c.counter },
      el("th", { scope: "row" }, c.name), el("td", {}, badge(c.status)),
      el("td", { class: "serving-number" }, c.number ? el("strong", {}, c.number) : "–"),
      el("td", {}, c.officer || "–"))));
    const alerts = groups.filter((g) => g.waiting && g.longest >= g.threshold).map((g) =>
      el("li", {}, `${groupName[g.code]}: có người đã chờ ${Math.round(g.longest)} phút (ngưỡng ${g.threshold} phút). `,
        el("span", { class: "en", lang: "en" }, `Longest wait over ${g.threshold} min.`)));
    if (!open && snapshot.waiting_total) alerts.push(el("li", {}, `Có ${snapshot.waiting_total} người chờ nhưng chưa quầy nào mở.`));
    $("#alerts").replaceChildren(...(alerts.length ? alerts : [el("li", { style: "color:#146c2e" }, "Không có cảnh báo. ", el("span", { class: "en", lang: "en" }, "No alerts."))]));
  }

  async function loadStats() {
    try {
      const [hourly, sat, judged] = await Promise.all([api("GET", "/api/v1/stats/waiting?by=hour"), api("GET", "/api/v1/stats/satisfaction?by=group"),
        api("GET", "/api/v1/reports/satisfaction?by=group")]);
      const centreRow = judged.rows.find((r) => r.key === "*");
      $("#s-766").textContent = centreRow && centreRow.index_766 !== null ? String(centreRow.index_766).replace(".", ",") + " %" : "–";
      $("#s-returns").textContent = centreRow ? `${centreRow.returns_early} / ${centreRow.returns_on_day} / ${centreRow.returns_late}` : "0 / 0 / 0";
      const refused = judged.refused.reduce((s, r) => s + r.count, 0);
      $("#s-refused").textContent = refused;
      $("#s-refused").title = judged.refused.map((r) => `${r.name}: ${r.count}`).join("; ");
      const byHour = {};
      for (const r of hourly.rows) {
        const h = byHour[r.hour] || (byHour[r.hour] = { called: 0, waitSum: 0, served: 0, serviceSum: 0 });
        h.called += r.called; h.waitSum += (r.mean_wait_minutes || 0) * r.called;
        h.served += r.served; h.serviceSum += (r.mean_service_minutes || 0) * r.served;
      }
      const hours = Object.keys(byHour).map(Number);
      const first = Math.min(7, ...hours), last = Math.max(17, ...hours);
      const points = (f) => Array.from({ length: last - first + 1 }, (_, i) => ({ hour: first + i, value: byHour[first + i] ? f(byHour[first + i]) : null }));
      barChart($("#chart-wait"), points((h) => h.called ? h.waitSum / h.called : null), { unit: " phút", label: "Thời gian chờ trung bình theo giờ" });
      barChart($("#chart-service"), points((h) => h.served ? h.serviceSum / h.served : null), { unit: " phút", color: "#146c2e", label: "Thời gian phục vụ trung bình theo giờ" });
      barChart($("#chart-served"), points((h) => h.served), { color: "#8a5300", unit: " lượt", integer: true, label: "Số lượt phục vụ theo giờ" });
      $("#s-served").textContent = hourly.rows.reduce((s, r) => s + r.served, 0);
      let n = 0, sum = 0;
      for (const r of sat.rows) if (r.index !== null) { n += r.responses; sum += r.index * r.responses; }
      $("#s-satisfaction").textContent = n ? Math.round(sum / n) + " (" + n + " lượt)" : "–";
    } catch (e) { showError(e); }
  }
  /* Bookings (docs/bookings.md): today's appointments per slot, all groups summed, and the
     share of today's tickets that were remote numbers. */
  async function loadBookings() {
    try {
      const [day, kinds] = await Promise.all([api("GET", "/api/v1/bookings"), api("GET", "/api/v1/reports/kinds")]);
      $("#s-remote").textContent = kinds.remote_share === null ? "–"
        : `${String(kinds.remote_share).replace(".", ",")}% (${kinds.kinds.find((k) => k.kind === "remote").issued}/${kinds.tickets})`;
      const slots = new Map();
      for (const s of day.slots) {
        const row = slots.get(s.slot) || { time: s.time, booked: 0, capacity: 0, here: 0, lapsed: 0, groups: [] };
        row.booked += s.booked; row.capacity += s.capacity;
        if (s.booked) row.groups.push(`${groupName[s.group] || s.group} ${s.booked}`);
        slots.set(s.slot, row);
      }
      for (const b of day.bookings) {
        const row = b.kind === "appointment" && slots.get(b.slot);
        if (!row) continue;
        if (b.status === "checked_in") row.here += 1;
        if (b.status === "lapsed" || b.status === "no_show") row.lapsed += 1;
      }
      const rows = [...slots.values()].filter((r) => r.booked || r.here || r.lapsed);
      $("#slots").replaceChildren(...rows.map((r) => el("tr", {},
        el("th", { scope: "row" }, r.time), el("td", { class: "num" }, `${r.booked} / ${r.capacity}`),
        el("td", { class: "num" }, r.here), el("td", { class: "num" }, r.lapsed), el("td", {}, r.groups.join(", ")))));
      if (!rows.length) $("#slots").append(el("tr", {}, el("td", { colspan: 5 }, "Chưa có lịch hẹn nào hôm nay. ", el("span", { class: "en", lang: "en" }, "No appointments today."))));
    } catch (e) { showError(e); }
  }
  let statsTimer = null;
  let bookingsTimer = null;
  const bookingsSoon = () => { if (!bookingsTimer) bookingsTimer = setTimeout(() => { bookingsTimer = null; loadBookings(); }, 700); };
  const statsSoon = () => { if (!statsTimer) statsTimer = setTimeout(() => { statsTimer = null; loadStats(); }, 700); };

  async function loadDevices() {
    try {
      const data = await api("GET", "/api/v1/devices");
      const ROLE = { kiosk: "Ki-ốt lấy số", display: "Màn hình", pad: "Bảng đánh giá", manager: "Quản lý" };
      $("#devices").replaceChildren(...data.devices.map((d) => {
        let state = !settings.availability_known ? "unknown" : d.online ? "online" : "offline";
        if (d.state === "revoked" || d.state === "pending") state = d.state;
        const text = { unknown: "Không rõ (chưa có MQTT)", online: "Trực tuyến", offline: "Mất kết nối",
          revoked: "Đã thu hồi", pending: "Chờ đăng ký" }[state];
        const revoke = d.state === "revoked" ? "–" : el("button", { type: "button", class: "revoke", "data-device": d.id,
          onclick: () => revokeDevice(d.id) }, "Thu hồi");
        return el("tr", { "data-device": d.id }, el("th", { scope: "row" }, d.id), el("td", {}, ROLE[d.role] || d.role),
          el("td", {}, d.counter || "–"), el("td", {}, el("span", { class: "badge b-" + state }, text)), el("td", {}, revoke));
      }));
    } catch (e) { showError(e); }
  }

  async function revokeDevice(id) {
    if (!confirm("Thu hồi thiết bị " + id + "? Nó sẽ mất kết nối ngay. / Revoke " + id + "?")) return;
    try { await api("POST", "/api/v1/devices/" + encodeURIComponent(id) + "/revoke"); } catch (e) { showError(e); }
    loadDevices();
  }

  $("#add-device").addEventListener("submit", async (event) => {
    event.preventDefault();
    const counter = $("#add-counter").value;
    try {
      const added = await api("POST", "/api/v1/devices", { id: $("#add-id").value.trim(), role: $("#add-role").value,
        counter: counter ? Number(counter) : null });
      $("#enrol-code").textContent = added.code;
      $("#enrol-command").textContent = added.device.role === "manager" ? "POST " + added.url + "/api/v1/enrol"
        : "luot " + added.device.role + " --enrol " + added.qr_text;
      $("#enrol-qr").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(added.qr_svg);
      $("#enrolment").hidden = false;
      loadDevices();
    } catch (e) { showError(e); }
  });

  /* Staff accounts: a manager resets someone's password after a confirm step; the answer's
     one-time password is shown once (the server keeps only its hash). One's own password is
     changed with "Đổi mật khẩu", not reset (the API refuses it). */
  const ROLE_NAME = { officer: "Cán bộ", manager: "Quản lý" };
  let resetTarget = null;
  async function loadStaff() {
    try {
      const data = await api("GET", "/api/v1/users");
      $("#staff").replaceChildren(...data.users.map((u) => {
        const self = u.username === me.username;
        const reset = el("button", { type: "button", class: "reset", "data-user": u.username, onclick: () => askReset(u) },
          "Đặt lại mật khẩu");
        if (self) { reset.disabled = true; reset.title = "Tài khoản của bạn: dùng Đổi mật khẩu / your own: change it instead"; }
        return el("tr", { "data-user": u.username }, el("th", { scope: "row" }, u.username), el("td", {}, u.name),
          el("td", {}, ROLE_NAME[u.role] || u.role),
          el("td", {}, u.must_change_password ? el("span", { class: "badge b-pending" }, "Dùng một lần, chờ đổi")
            : el("span", { class: "badge b-online" }, "Đã đặt")), el("td", {}, reset));
      }));
    } catch (e) { showError(e); }
  }
  function askReset(user) {
    resetTarget = user.username;
    $("#reset-question").replaceChildren(`Đặt lại mật khẩu của ${user.username} (${user.name})? Họ sẽ bị đăng xuất ngay và nhận một mật khẩu dùng một lần. `,
      el("span", { class: "en", lang: "en" }, `Reset ${user.username}'s password? They are signed out at once and get a one-time password.`));
    $("#reset-result").hidden = true;
    $("#reset-confirm").hidden = false;
    $("#reset-yes").focus();
  }
  $("#reset-no").onclick = () => { resetTarget = null; $("#reset-confirm").hidden = true; };
  $("#reset-yes").onclick = async () => {
    const username = resetTarget;
    if (!username) return;
    resetTarget = null; $("#reset-confirm").hidden = true;
    try {
      const done = await api("POST", "/api/v1/users/" + encodeURIComponent(username) + "/reset-password");
      $("#reset-user").textContent = done.username;
      $("#reset-password").textContent = done.one_time_password;
      $("#reset-result").hidden = false;
    } catch (e) { showError(e); }
    loadStaff();
  };

  stream((update) => {
    snapshot = update.snapshot; receivedAt = Date.now(); render();
    if (update.events.some((e) => /^(ticket\.(called|finished|no_show|issued)|feedback\.(recorded|refused)|dossier\.\w+)$/.test(e.type))) statsSoon();
    if (update.events.some((e) => e.type.startsWith("booking."))) bookingsSoon();
  });
  loadStats(); loadDevices(); loadBookings(); loadStaff();
  setInterval(render, 15000); setInterval(loadStats, 60000); setInterval(loadBookings, 60000); setInterval(loadDevices, 30000);
})();
