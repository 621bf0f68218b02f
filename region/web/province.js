/* Province table: every centre ranked, sortable, filterable; warnings first; live. */
"use strict";
(() => {
  const { el, $, api, showError } = Luot;
  let data = null, sortKey = "waiting", sortDir = -1;
  const HIGH = { longest_wait_minutes: r => r.longest_wait_minutes > 30, no_show_rate: r => r.no_show_rate > 15,
    satisfaction: r => r.satisfaction !== null && r.satisfaction < 60, devices_offline: r => r.devices_offline > 0 };

  function value(row, key) {
    const v = row[key];
    if (key === "link") return ["bridge-down", "server-down", "silent", "unknown", "ok"].indexOf(v);
    return v === null || v === undefined ? -Infinity : v;
  }
  function render() {
    if (!data) return;
    const text = $("#filter").value.trim().toLocaleLowerCase("vi");
    const only = $("#only").value;
    let rows = data.centres.filter(r => (!text || (r.name + " " + (r.ward || "") + " " + r.centre).toLocaleLowerCase("vi").includes(text))
      && (only !== "warn" || r.warnings > 0) && (only !== "offline" || !["ok"].includes(r.link)));
    rows.sort((a, b) => {
      const x = value(a, sortKey), y = value(b, sortKey);
      if (typeof x === "string") return sortDir * x.localeCompare(y, "vi");
      return sortDir * (x - y) || a.name.localeCompare(b.name, "vi");
    });
    $("#count").textContent = `${rows.length} / ${data.centres.length} trung tâm`;
    const cell = (r, key, digits) => el("td", { class: "num" + (HIGH[key] && HIGH[key](r) ? " bad" : "") }, Region.num(r[key], digits));
    $("#centres tbody").replaceChildren(...rows.map(r => el("tr", { class: r.warnings ? "has-warning" : "" },
      el("th", { scope: "row" }, el("a", { href: "/centre/" + encodeURIComponent(r.centre) }, r.name),
        r.ward ? el("div", { class: "muted" }, r.ward) : ""),
      cell(r, "waiting", 0), cell(r, "longest_wait_minutes", 0), cell(r, "mean_wait_minutes"), cell(r, "p90_wait_minutes"),
      cell(r, "served", 0), cell(r, "no_show_rate"), cell(r, "remote", 0), cell(r, "lapsed", 0),
      el("td", { class: "num" + (r.index_766 !== null && r.index_766 < 90 ? " bad" : ""), "data-rank": r.rank_766 || "" },
        Region.num(r.index_766), r.rank_766 ? el("div", { class: "muted" }, "hạng " + r.rank_766 + " · " + r.dossiers_30d + " hồ sơ") : ""),
      cell(r, "satisfaction", 0), cell(r, "devices_offline", 0),
      el("td", {}, Region.linkBadge(r.link), el("div", { class: "muted" }, "Sự kiện cuối: " + Region.time(r.last_event_at))))));
    document.querySelectorAll("#centres th[data-key]").forEach(th =>
      th.setAttribute("aria-sort", th.dataset.key === sortKey ? (sortDir < 0 ? "descending" : "ascending") : "none"));
  }
  async function reload() {
    try {
      data = await api("GET", "/api/overview");
      showError(null);
    } catch (err) { showError(err); return; }
    Region.setZone(data.region.timezone);
    $("#region-name").textContent = data.region.name;
    const rows = data.centres;
    // the rows carry when the longest wait began; its minutes at the snapshot's time are computed here
    rows.forEach(r => { r.longest_wait_minutes = Region.minutesSince(data.now, r.longest_since); });
    $("#t-waiting").textContent = Region.num(rows.reduce((s, r) => s + r.waiting, 0), 0);
    $("#t-served").textContent = Region.num(rows.reduce((s, r) => s + r.served, 0), 0);
    $("#t-centres").textContent = `${rows.filter(r => r.last_event_at).length} / ${rows.length}`;
    $("#t-links").textContent = rows.filter(r => r.link !== "ok").length;
    $("#t-warnings").textContent = data.warnings.length;
    $("#updated").textContent = "Cập nhật " + Region.time(data.now);
    // warnings that count minutes carry when they began: their minutes at the snapshot's time are put in here,
    // and the growing warning's counts from the snapshot's recent part
    Region.warnings($("#warnings"), Region.withMinutes(data.warnings, data.now, data.recent), true);
    render();
  }
  document.querySelectorAll("#centres th[data-key]").forEach(th => th.addEventListener("click", () => {
    if (sortKey === th.dataset.key) sortDir = -sortDir; else { sortKey = th.dataset.key; sortDir = th.dataset.key === "name" ? 1 : -1; }
    render();
  }));
  $("#filter").addEventListener("input", render);
  $("#only").addEventListener("change", render);
  reload();
  Region.live(reload);
})();
