/* National page: provinces and centres ranked by their early warnings (the provinces' own), polled. */
"use strict";
(() => {
  const { el, $, api, showError } = Luot;
  const FIRST_WARNINGS = 10, POLL_MS = 10000;
  let allWarnings = false;
  const SYNC = { ok: ["Bình thường", "in sync"], copying: ["Đang sao chép lần đầu", "initial copy"],
    cut: ["Đã tạm dừng", "paused"], disconnected: ["Mất kết nối tới tỉnh", "province unreachable"],
    silent: ["Tỉnh không phản hồi", "province silent"], none: ["Chưa thiết lập", "not set up"] };
  const num = Region.num;
  const cell = (v, digits, bad) => el("td", { class: "num" + (bad ? " bad" : "") }, num(v, digits));

  function syncBadge(state) {
    const [vi, en] = SYNC[state] || [state, state];
    return el("span", { class: "badge " + (state === "ok" ? "b-ok" : state === "copying" ? "b-calling" : "b-silent"), title: en }, vi);
  }
  function provinces(rows) {
    $("#provinces tbody").replaceChildren(...rows.map((p, i) => el("tr", { class: p.warnings_high ? "has-warning" : "" },
      cell(i + 1, 0), el("th", { scope: "row" }, p.name),
      el("td", { class: "num" + (p.warnings_high ? " bad" : "") }, `${num(p.warnings_high, 0)} / ${num(p.warnings, 0)}`),
      cell(p.waiting, 0), cell(p.longest_wait_minutes, 0, p.longest_wait_minutes > 60), cell(p.mean_wait_minutes),
      cell(p.served, 0), cell(p.no_show_rate, 1, p.no_show_rate > 15), cell(p.satisfaction, 0, p.satisfaction !== null && p.satisfaction < 60),
      el("td", { class: "num" + (p.centres_offline ? " bad" : "") }, `${num(p.centres_offline, 0)} / ${num(p.centres, 0)}`),
      el("td", {}, syncBadge(p.replication)))));
  }
  function warnings(items) {
    $("#no-warnings").hidden = items.length > 0;
    const shown = allWarnings ? items : items.slice(0, FIRST_WARNINGS);
    $("#warn-count").textContent = shown.length < items.length ? `(${shown.length} / ${num(items.length, 0)})` : "";
    $("#more-warnings").hidden = shown.length >= items.length;
    $("#warnings").replaceChildren(...shown.map(w => el("li", { class: w.level },
      el("span", { class: "badge " + (w.level === "cao" ? "b-alert" : "b-calling") }, w.level === "cao" ? "Khẩn" : "Theo dõi"), " ",
      el("span", { class: "who" }, w.centre ? `${w.name} (${w.province_name})` : w.province_name), ": ", w.vi,
      el("span", { class: "en", lang: "en" }, w.en))));
  }
  function centres(rows, total) {
    $("#centre-count").textContent = `(${rows.length} / ${num(total, 0)})`;
    $("#ranked tbody").replaceChildren(...rows.map((r, i) => el("tr", { class: r.warnings ? "has-warning" : "" },
      cell(i + 1, 0), el("th", { scope: "row" }, r.name, r.ward ? el("div", { class: "muted" }, r.ward) : ""),
      el("td", {}, r.province_name), cell(r.warnings, 0, r.warnings > 0), cell(r.waiting, 0),
      cell(r.longest_wait_minutes, 0, r.longest_wait_minutes > 30), cell(r.mean_wait_minutes), cell(r.p90_wait_minutes),
      cell(r.served, 0), cell(r.satisfaction, 0, r.satisfaction !== null && r.satisfaction < 60),
      el("td", {}, Region.linkBadge(r.link)))));
  }
  async function reload() {
    let data;
    try {
      data = await api("GET", "/api/overview");
      showError(null);
    } catch (err) { showError(err); return; }
    Region.setZone(data.national.timezone);
    $("#national-name").textContent = data.national.name;
    const t = data.totals;
    $("#t-provinces").textContent = `${data.provinces.filter(p => p.replication === "ok").length} / ${data.provinces.length}`;
    $("#t-centres").textContent = num(t.centres, 0);
    $("#t-waiting").textContent = num(t.waiting, 0);
    $("#t-served").textContent = num(t.served, 0);
    $("#t-warnings").textContent = `${num(t.warnings_high, 0)} / ${num(t.warnings, 0)}`;
    $("#updated").textContent = "Cập nhật " + Region.time(data.now);
    provinces(data.provinces);
    last = data;
    warnings(data.warnings);
    centres(data.centres, data.centres_total);
  }
  let last = null;
  $("#more-warnings").addEventListener("click", () => { allWarnings = true; if (last) warnings(last.warnings); });
  reload();
  setInterval(reload, POLL_MS);
})();
