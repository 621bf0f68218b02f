/* Reports: per day or week by group, counter or officer; satisfaction as Decision 766 counts it by
   group, procedure (the receipt's mã TTHC), counter, officer or month, with the ratings refused;
   CSV and XLSX downloads. The CSV's separator is the reader's choice, remembered on this browser:
   Excel takes the list separator of Windows' region, ";" where the decimal mark is "," as in
   Vietnamese, "," under an English region; XLSX needs no choice. */
"use strict";
(async () => {
  const { api, $, el, showError, signIn } = Luot;
  await signIn(["manager"]);
  $("#logout").hidden = false; $("#logout").onclick = Luot.logout;
  const form = $("#filter");
  const centre = await api("GET", "/api/v1/centre");
  form.to.value = centre.day;
  const start = new Date(centre.day + "T00:00:00Z"); start.setUTCDate(start.getUTCDate() - 6);
  form.from.value = start.toISOString().slice(0, 10);
  const REASON = { wait: "chờ lâu", attitude: "thái độ", guidance: "hướng dẫn", documents: "giấy tờ", other: "khác" };
  const fmt = (v) => (v === null || v === undefined ? "–" : String(Math.round(v * 10) / 10).replace(".", ","));
  // Each change of the filter starts a new load; an older load that answers late must not put its
  // figures over the newer one's (seen: the day view landing after the week view was asked for).
  let latest = 0;
  const sep = $("#csv-sep");
  sep.value = localStorage.getItem("luot.csvSep") ?? "vi";
  function links() {  // the downloads follow the filter and the separator chosen
    const excel = sep.value ? "excel=vi&" : "";  // Vietnamese Excel: ";" and decimal ","
    const q = new URLSearchParams({ from: form.from.value, to: form.to.value, by: form.by.value, period: form.period.value });
    $("#csv").href = "/api/v1/reports/export.csv?" + excel + q;
    $("#xlsx").href = "/api/v1/reports/export.xlsx?" + q;
    const sq = new URLSearchParams({ from: form.from.value, to: form.to.value, by: $("#s766-by").value });
    $("#s766-csv").href = "/api/v1/reports/satisfaction.csv?" + excel + sq; $("#s766-xlsx").href = "/api/v1/reports/satisfaction.xlsx?" + sq;
  }
  sep.onchange = () => { localStorage.setItem("luot.csvSep", sep.value); links(); };
  async function show() {
    const mine = ++latest;
    const stale = () => mine !== latest;
    const q = new URLSearchParams({ from: form.from.value, to: form.to.value, by: form.by.value, period: form.period.value });
    links();
    showError(null);
    // whatever the answer, the tables must not keep the previous range's figures under an error
    const empty = (id, cols, vi, en) => $(id).replaceChildren(el("tr", {}, el("td", { colspan: cols }, vi, " ", el("span", { class: "en", lang: "en" }, en))));
    empty("#rows", 10, "Đang tải…", "Loading…"); empty("#s766", 15, "Đang tải…", "Loading…"); $("#refused").replaceChildren();
    if (form.from.value && form.to.value && form.from.value > form.to.value) {
      empty("#rows", 10, "Không có kết quả.", "No results.");
      empty("#s766", 15, "Không có kết quả.", "No results.");
      showError({ message: "Khoảng ngày không hợp lệ: \"Từ ngày\" phải trước hoặc bằng \"Đến ngày\".", en: "Invalid range: From must not be after To." });
      return;
    }
    try {
      const data = await api("GET", "/api/v1/reports?" + q);
      if (stale()) return;
      $("#rows").replaceChildren(...data.rows.map((r) => el("tr", {},
        el("td", {}, r.period), el("th", { scope: "row" }, r.name),
        el("td", { class: "num" }, r.issued), el("td", { class: "num" }, r.called), el("td", { class: "num" }, r.served),
        el("td", { class: "num" }, fmt(r.mean_wait_minutes)), el("td", { class: "num" }, fmt(r.p90_wait_minutes)),
        el("td", { class: "num" }, fmt(r.mean_service_minutes)), el("td", { class: "num" }, fmt(r.no_show_rate)),
        el("td", { class: "num" }, fmt(r.satisfaction_index)))));
      if (!data.rows.length) $("#rows").append(el("tr", {}, el("td", { colspan: 10 }, "Không có số liệu trong khoảng này. ", el("span", { class: "en", lang: "en" }, "No data in this range."))));
      const kinds = await api("GET", "/api/v1/reports/kinds?" + new URLSearchParams({ from: form.from.value, to: form.to.value }));
      if (stale()) return;
      $("#kinds").replaceChildren(...kinds.kinds.map((k) => el("tr", { "data-kind": k.kind },
        el("th", { scope: "row" }, k.name, " ", el("span", { class: "en", lang: "en" }, k.name_en)),
        ...[k.issued, k.called, fmt(k.mean_wait_minutes), k.no_show].map((v) => el("td", { class: "num" }, v)),
        ...(k.kind === "walk_in" ? ["", "", "", ""] : [k.booked, k.checked_in, k.lapsed, k.cancelled]).map((v) => el("td", { class: "num" }, v)))));
      $("#remote-share").textContent = `Tỷ lệ số trực tuyến: ${fmt(kinds.remote_share)}% của ${kinds.tickets} vé (remote share).`;
      const sq = new URLSearchParams({ from: form.from.value, to: form.to.value, by: $("#s766-by").value });
      const judged = await api("GET", "/api/v1/reports/satisfaction?" + sq);
      if (stale()) return;
      $("#s766").replaceChildren(...judged.rows.map((r) => el("tr", {},
        el("th", { scope: "row" }, r.name), el("td", { class: "num" }, r.dossiers), el("td", { class: "num" }, r.dossiers_dissatisfied),
        el("td", { class: "num" }, r.dossiers_overdue), el("td", { class: "num" }, fmt(r.index_766)), el("td", { class: "num" }, r.responses),
        ...[5, 4, 3, 2, 1].map((l) => el("td", { class: "num" }, r["level_" + l])),
        el("td", { class: "num" }, fmt(r.wait_dissatisfied_minutes) + " / " + fmt(r.wait_satisfied_minutes)),
        el("td", { class: "num" }, r.dossiers_returned_on_time + " / " + r.dossiers_returned),
        el("td", { class: "num" }, `${r.returns_early} / ${r.returns_on_day} / ${r.returns_late}`),
        el("td", {}, ["wait", "attitude", "guidance", "documents", "other"].filter((k) => r["reason_" + k])
          .map((k) => REASON[k] + " " + r["reason_" + k]).join(", ") || "–"))));
      if (!judged.rows.length) $("#s766").append(el("tr", {}, el("td", { colspan: 15 }, "Chưa có hồ sơ hay đánh giá trong khoảng này.")));
      $("#refused").replaceChildren(...(judged.refused.length ? judged.refused.map((r) =>
        el("li", {}, `${r.name} (${r.source === "track" ? "trang theo dõi" : "bảng đánh giá"}): `, el("strong", {}, r.count), " ",
          el("span", { class: "en", lang: "en" }, r.name_en))) : [el("li", {}, "Không có. ", el("span", { class: "en", lang: "en" }, "None."))]));
    } catch (e) {
      if (stale()) return;
      empty("#rows", 10, "Không có kết quả.", "No results."); empty("#s766", 15, "Không có kết quả.", "No results.");
      showError(e);
    }
  }
  form.onsubmit = (ev) => { ev.preventDefault(); show(); };
  for (const input of document.querySelectorAll("#filter select:not(#csv-sep), #s766-by")) input.onchange = show;
  show();
})();
