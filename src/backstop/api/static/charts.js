/* Small SVG charts for the backstop dashboard (no third-party code).
 * Every chart sets data-count on its <svg> to the number of data items it drew. */
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function shortNum(v) {
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e4) return String(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "B";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  if (a >= 1 || a === 0) return v.toFixed(a >= 100 ? 0 : 2);
  return v.toPrecision(3);
}

/* A step line of [tsMs, value] points, held flat up to nowMs. */
function stepLineChart(container, points, nowMs, opts) {
  const w = (opts && opts.width) || 220, h = (opts && opts.height) || 64, pad = 2;
  const svg = svgEl("svg", {viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", "data-count": points.length,
                            class: "line-chart"});
  container.replaceChildren(svg);
  if (!points.length) return svg;
  const last = points[points.length - 1];
  const pts = points.concat([[Math.max(nowMs, last[0]), last[1]]]);
  const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
  const vals = pts.map(p => p[1]);
  let lo = Math.min(0, ...vals), hi = Math.max(...vals);
  if (hi === lo) hi = lo + 1;
  const x = t => pad + (t1 === t0 ? w - 2 * pad : (t - t0) / (t1 - t0) * (w - 2 * pad));
  const y = v => h - pad - (v - lo) / (hi - lo) * (h - 2 * pad);
  let d = `M${x(pts[0][0]).toFixed(1)},${y(pts[0][1]).toFixed(1)}`;
  for (let i = 1; i < pts.length; i++) {
    d += `H${x(pts[i][0]).toFixed(1)}V${y(pts[i][1]).toFixed(1)}`;
  }
  svg.appendChild(svgEl("path", {class: "area", d: `${d}V${h - pad}H${x(t0).toFixed(1)}Z`}));
  svg.appendChild(svgEl("path", {class: "line", d}));
  return svg;
}

/* Vertical bars: labels[i] under values[i]; series colours optional (stacked when values are arrays). */
function barChart(container, labels, values, opts) {
  const colors = (opts && opts.colors) || ["#4fb3ff"];
  const w = 460, h = (opts && opts.height) || 170, left = 34, bottom = 34, top = 16;
  const stacks = values.map(v => Array.isArray(v) ? v : [v]);
  const totals = stacks.map(s => s.reduce((a, b) => a + b, 0));
  const items = totals.filter(t => t > 0).length;
  const svg = svgEl("svg", {viewBox: `0 0 ${w} ${h}`, "data-count": items, class: "bar-chart"});
  container.replaceChildren(svg);
  if (!labels.length) {
    svg.appendChild(svgEl("text", {x: w / 2, y: h / 2, "text-anchor": "middle"}, (opts && opts.empty) || "no data"));
    return svg;
  }
  const max = Math.max(1, ...totals);
  const plotH = h - bottom - top, slot = (w - left) / labels.length, bw = Math.min(56, Math.max(2, slot * 0.7));
  svg.appendChild(svgEl("line", {class: "axis", x1: left, x2: w, y1: h - bottom, y2: h - bottom}));
  svg.appendChild(svgEl("text", {x: left - 4, y: top + 8, "text-anchor": "end"}, shortNum(max)));
  svg.appendChild(svgEl("text", {x: left - 4, y: h - bottom, "text-anchor": "end"}, "0"));
  labels.forEach((label, i) => {
    const x0 = left + i * slot + (slot - bw) / 2;
    let yTop = h - bottom;
    stacks[i].forEach((v, j) => {
      if (v <= 0) return;
      const bh = v / max * plotH;
      yTop -= bh;
      const rect = svgEl("rect", {x: x0.toFixed(1), y: yTop.toFixed(1), width: bw.toFixed(1), height: bh.toFixed(1),
                                  fill: colors[j % colors.length]});
      rect.appendChild(svgEl("title", {}, `${label}: ${v}`));
      svg.appendChild(rect);
    });
    if (labels.length <= 12 || i % Math.ceil(labels.length / 12) === 0) {
      svg.appendChild(svgEl("text", {x: (x0 + bw / 2).toFixed(1), y: h - bottom + 12, "text-anchor": "middle"},
                            String(label).replace(/-SWAP$/, "")));
    }
    if (totals[i] > 0 && labels.length <= 12) {
      svg.appendChild(svgEl("text", {x: (x0 + bw / 2).toFixed(1), y: (yTop - 2).toFixed(1), "text-anchor": "middle"},
                            shortNum(totals[i])));
    }
  });
  if (opts && opts.legend) {
    opts.legend.forEach((name, j) => {
      const lx = left + j * 58;
      svg.appendChild(svgEl("rect", {x: lx, y: h - 12, width: 9, height: 9, fill: colors[j % colors.length]}));
      svg.appendChild(svgEl("text", {x: lx + 12, y: h - 4}, name));
    });
  }
  return svg;
}

window.charts = {stepLineChart, barChart, shortNum};
