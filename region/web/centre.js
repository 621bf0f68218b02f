/* One centre in detail: groups, hours, devices, link, warnings. */
"use strict";
(() => {
  const { el, $, api, showError } = Luot;
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const stat = (v, vi, en) => el("div", { class: "stat" }, el("span", { class: "v" }, v), el("span", { class: "k" }, vi, " ", el("span", { class: "en", lang: "en" }, en)));
  async function reload() {
    let d;
    try { d = await api("GET", "/api/centre/" + encodeURIComponent(id)); showError(null); } catch (err) { showError(err); return; }
    Region.setZone(d.region.timezone);
    const c = d.centres[0];
    document.title = c.name + " – Luot";
    $("#title").replaceChildren(c.name, " ", el("span", { class: "en", lang: "en" }, c.ward));
    $("#stats").replaceChildren(stat(Region.num(c.waiting, 0), "Đang chờ", "waiting"),
      stat(Region.num(c.longest_wait_minutes, 0) + "′", "Chờ lâu nhất", "longest wait"),
      stat(Region.num(c.mean_wait_minutes) + " / " + Region.num(c.p90_wait_minutes), "Chờ TB / P90 (phút)", "mean / p90 wait"),
      stat(Region.num(c.served, 0), "Đã phục vụ hôm nay", "served today"),
      stat(Region.num(c.no_show_rate) + "%", "Vắng mặt", "no-show"),
      stat(Region.num(c.satisfaction, 0), "Hài lòng (0–100)", "satisfaction"),
      stat(Region.num(c.remote, 0) + " / " + Region.num(c.lapsed, 0), "Số trực tuyến / hẹn không đến", "remote / lapsed"),
      stat([c.wait_walk_in_minutes, c.wait_remote_minutes, c.wait_appointment_minutes].map((v) => Region.num(v)).join(" / "),
        "Chờ TB: trực tiếp / trực tuyến / hẹn (phút)", "mean wait: walk-in / remote / appointment"));
    Region.warnings($("#warnings"), d.warnings, false);
    $("#groups").replaceChildren(...d.groups.map(g => el("tr", {}, el("th", { scope: "row" }, g.name),
      el("td", { class: "num" }, Region.num(g.waiting, 0)),
      el("td", { class: "num" + (g.longest_wait_minutes > g.threshold_minutes ? " bad" : "") }, Region.num(g.longest_wait_minutes, 0)),
      el("td", { class: "num" }, g.threshold_minutes), el("td", { class: "num" }, Region.num(g.served, 0)),
      el("td", { class: "num" }, Region.num(g.mean_wait_minutes)), el("td", { class: "num" }, Region.num(g.p90_wait_minutes)))));
    $("#hours").replaceChildren(...d.hours.map(h => el("tr", {}, el("th", { scope: "row" }, h.hour),
      el("td", { class: "num" }, h.issued), el("td", { class: "num" }, h.served), el("td", { class: "num" }, Region.num(h.mean_wait_minutes)))));
    const fact = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
    $("#link").replaceChildren(...fact("Trạng thái", Region.linkBadge(c.link)),
      ...fact("Sự kiện gần nhất", Region.time(c.last_event_at)), ...fact("Nhận dữ liệu lần cuối", Region.time(c.last_heard_at)),
      ...fact("Máy chủ trung tâm", c.server_online === null ? "–" : (c.server_online ? "Hoạt động" : "Ngừng") + " từ " + Region.time(c.server_at)),
      ...fact("Cầu nối MQTT", c.bridge_online === null ? "–" : (c.bridge_online ? "Kết nối" : "Mất kết nối") + " từ " + Region.time(c.bridge_at)),
      ...fact("Đồng bộ nhật ký", c.catch_up_error ? "Lỗi: " + c.catch_up_error : Region.time(c.catch_up_at)));
    $("#devices").replaceChildren(...d.devices.map(x => el("tr", {}, el("th", { scope: "row" }, x.device),
      el("td", {}, el("span", { class: "badge " + (x.online ? "b-online" : "b-offline") }, x.online ? "Trực tuyến" : "Mất kết nối")),
      el("td", {}, Region.time(x.at)))));
  }
  reload();
  Region.live(reload);
})();
