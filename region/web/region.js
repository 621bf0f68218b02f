/* Shared by the province pages: formatting, link labels, warnings list, live stream. */
"use strict";
const Region = (() => {
  const { el, $ } = Luot;
  const LINK = {
    "ok": ["Bình thường", "ok"], "bridge-down": ["Mất đường truyền", "bridge down"],
    "server-down": ["Máy chủ ngừng", "server down"], "silent": ["Không có tín hiệu", "silent"],
    "unknown": ["Chưa có dữ liệu", "never heard"],
  };
  function num(v, digits) {
    if (v === null || v === undefined) return "–";
    return Number(v).toLocaleString("vi-VN", { maximumFractionDigits: digits === undefined ? 1 : digits });
  }
  let zone = "Asia/Ho_Chi_Minh";  // the province's time, whatever the viewing computer's clock says
  function setZone(z) { if (z) zone = z; }
  function time(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    const day = x => x.toLocaleDateString("vi-VN", { timeZone: zone });
    const hm = d.toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit", timeZone: zone });
    return day(d) === day(new Date()) ? hm : hm + " " + day(d);
  }
  function linkBadge(link) {
    const [vi, en] = LINK[link] || [link, link];
    return el("span", { class: "badge b-" + link, title: en }, vi);
  }
  function warnings(list, items, showCentre) {
    $("#no-warnings").hidden = items.length > 0;
    list.replaceChildren(...items.map(w => el("li", { class: w.level },
      el("span", { class: "badge " + (w.level === "cao" ? "b-alert" : "b-calling") }, w.level === "cao" ? "Khẩn" : "Theo dõi"), " ",
      showCentre ? el("a", { class: "who", href: "/centre/" + encodeURIComponent(w.centre) }, w.name) : "",
      showCentre ? ": " : "", w.vi, el("span", { class: "en", lang: "en" }, w.en))));
  }
  function live(reload) {
    const badge = $("#live");
    let timer = null;
    function connect() {
      const source = new EventSource("/api/stream");
      source.onopen = () => { badge.className = "live on"; badge.textContent = "Trực tiếp"; };
      source.onmessage = () => { clearTimeout(timer); timer = setTimeout(reload, 300); };
      source.onerror = () => { badge.className = "live off"; badge.textContent = "Mất kết nối, đang thử lại…"; };
    }
    connect();
  }
  /** Minutes from an ISO start to the snapshot's ISO ``now`` (0 when there is no start), as the server's exports round them. */
  function minutesSince(now, since) {
    if (!since) return 0;
    return Math.round(Math.max(0, (Date.parse(now) - Date.parse(since)) / 60000) * 10) / 10;
  }
  const MINUTES = "{minutes}";  // region.warnings.MINUTES: where a warning's text puts its minutes
  const ISSUED = "{issued}", CALLED = "{called}";  // region.warnings.ISSUED, CALLED: the growing warning's counts
  const fill = (text, slot, value) => text.split(slot).join(value);
  /** The warnings with their slots filled: minutes counted from each one's ``since`` to the snapshot's ``now``
   *  and rounded as the table's minutes are; the growing warning's tickets and calls from the snapshot's
   *  ``recent`` part ({centre: [issued, called]}; none: 0 and 0). region.warnings.with_minutes does the same
   *  for the other views. */
  function withMinutes(items, now, recent) {
    return items.map(w => {
      let { vi, en } = w;
      if (w.since) {
        const m = String(Math.round(minutesSince(now, w.since)));
        vi = fill(vi, MINUTES, m); en = fill(en, MINUTES, m);
      }
      if (w.kind === "growing") {
        const [issued, called] = (recent && recent[w.centre]) || [0, 0];
        vi = fill(fill(vi, ISSUED, String(issued)), CALLED, String(called));
        en = fill(fill(en, ISSUED, String(issued)), CALLED, String(called));
      }
      return vi === w.vi && en === w.en ? w : { ...w, vi, en };
    });
  }
  return { num, time, setZone, linkBadge, warnings, live, minutesSince, withMinutes };
})();
