/* A tiny bar chart in inline SVG: values per hour of the working day. No library.
   options.integer: the values are counts, so the four axis steps are whole numbers. */
"use strict";
function barChart(container, points, options) {
  const opts = Object.assign({ color: "#0b4f8a", unit: "", label: "" }, options || {});
  const W = 420, H = 220, left = 40, bottom = 28, top = 14, right = 6;
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const text = points.filter((p) => p.value !== null).map((p) => `${p.hour} giờ: ${Math.round(p.value * 10) / 10}${opts.unit}`).join("; ");
  svg.setAttribute("aria-label", `${opts.label}. ${text || "Chưa có số liệu"}`);
  const add = (tag, attrs, content) => {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (content !== undefined) node.textContent = content;
    svg.append(node); return node;
  };
  const max = Math.max(4, ...points.map((p) => p.value || 0));
  let ceil;
  if (opts.integer) {  // counts: whole ticks (0, 2, 4, 6, 8 lượt), never "7.5 lượt"
    ceil = Math.ceil(max / 4) * 4;
  } else {
    const nice = Math.pow(10, Math.floor(Math.log10(max)));
    ceil = Math.ceil(max / nice) * nice;
  }
  const plotW = W - left - right, plotH = H - top - bottom;
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    add("line", { x1: left, x2: W - right, y1: y, y2: y, stroke: "#d5dbe0" });
    add("text", { x: left - 4, y: y + 5, "text-anchor": "end" }, Math.round((ceil * i) / 4 * 10) / 10);
  }
  const slot = plotW / Math.max(1, points.length);
  points.forEach((p, i) => {
    const x = left + i * slot;
    if (p.value) {
      const h = (plotH * p.value) / ceil;
      add("rect", { x: x + slot * 0.15, y: top + plotH - h, width: slot * 0.7, height: h, fill: opts.color, rx: 2 })
        .append(document.createElementNS(NS, "title"));
      svg.lastChild.firstChild.textContent = `${p.hour} giờ: ${Math.round(p.value * 10) / 10}${opts.unit}`;
    }
    if (points.length <= 8 || i % 2 === 0) add("text", { x: x + slot / 2, y: H - 8, "text-anchor": "middle" }, p.hour + "h");
  });
  if (!points.some((p) => p.value)) add("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "Chưa có số liệu / no data yet");
  container.replaceChildren(svg);
}
