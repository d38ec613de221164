// Charts as inline SVG (no library, no build step). Each chart is an <svg role="img">
// with a title, and the same figures as a small table for screen readers and copying.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function table(caption, rows) {
  const wrap = document.createElement("div");
  wrap.className = "sr-only";
  const node = document.createElement("table");
  wrap.append(node);
  const cap = document.createElement("caption");
  cap.textContent = caption;
  node.append(cap);
  for (const [name, value] of rows) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    const td = document.createElement("td");
    td.textContent = String(value);
    tr.append(th, td);
    node.append(tr);
  }
  return wrap;
}

// Horizontal bars: one row a category, its count at the end. Reads well at 375 px.
export function barChart(caption, rows, { colours = {} } = {}) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const max = Math.max(1, ...rows.map(([, value]) => value));
  const rowHeight = 26;
  const height = rows.length * rowHeight + 4;
  const chart = svg("svg", { viewBox: `0 0 340 ${height}`, role: "img", width: "100%",
                             "aria-label": caption, preserveAspectRatio: "xMinYMin meet" });
  chart.append(svg("title", {}, caption));
  rows.forEach(([name, value, key], index) => {
    const y = index * rowHeight + 2;
    chart.append(svg("text", { x: 0, y: y + 16, class: "chart-label" }, name));
    const width = Math.round((value / max) * 130);
    chart.append(svg("rect", { x: 175, y: y + 3, width: Math.max(width, value ? 2 : 0), height: 18,
                               class: `bar ${colours[key] || ""}`.trim() }));
    chart.append(svg("text", { x: 181 + width, y: y + 16, class: "chart-value" }, value));
  });
  const heading = document.createElement("figcaption");
  heading.textContent = caption;
  figure.append(heading, chart, table(caption, rows.map(([name, value]) => [name, value])));
  return figure;
}

// Stacked columns over days: the last `days` days ending today (UTC), one colour a kind,
// zero where none. `byDay` is {day: {kind: count}}.
export function dayChart(caption, byDay, days, formatDay, kinds, kindName) {
  const today = new Date();
  const series = [];
  for (let back = days - 1; back >= 0; back -= 1) {
    const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - back));
    const key = day.toISOString().slice(0, 10);
    series.push([key, byDay[key] || {}]);
  }
  const total = (counts) => Object.values(counts).reduce((sum, n) => sum + n, 0);
  const figure = document.createElement("figure");
  figure.className = "chart";
  const max = Math.max(1, ...series.map(([, counts]) => total(counts)));
  const width = 320;
  const height = 150;
  const slot = width / series.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", width: "100%",
                             "aria-label": caption });
  chart.append(svg("title", {}, caption));
  series.forEach(([day, counts], index) => {
    const x = index * slot + 2;
    let top = 120;
    for (const kind of kinds) {
      const value = counts[kind] || 0;
      if (!value) continue;
      const barHeight = Math.max(1, Math.round((value / max) * 100));
      top -= barHeight;
      chart.append(svg("rect", { x, y: top, width: slot - 4, height: barHeight, class: `bar bar-kind-${kind}` }));
    }
    const sum = total(counts);
    if (sum) chart.append(svg("text", { x: x + (slot - 4) / 2, y: top - 4, class: "chart-value",
                                        "text-anchor": "middle" }, sum));
    if ((series.length - 1 - index) % 3 === 0 && index > 0) {
      const last = index === series.length - 1;
      chart.append(svg("text", { x: last ? width : x + (slot - 4) / 2, y: 138, class: "chart-label",
                                 "text-anchor": last ? "end" : "middle" }, formatDay(day)));
    }
  });
  chart.append(svg("line", { x1: 0, y1: 120.5, x2: width, y2: 120.5, class: "axis" }));
  const heading = document.createElement("figcaption");
  heading.textContent = caption;
  const legend = document.createElement("ul");
  legend.className = "legend";
  for (const kind of kinds) {
    const item = document.createElement("li");
    const swatch = svg("svg", { width: 12, height: 12, "aria-hidden": "true" });
    swatch.append(svg("rect", { width: 12, height: 12, class: `bar bar-kind-${kind}` }));
    item.append(swatch, ` ${kindName(kind)}`);
    legend.append(item);
  }
  const rows = series.map(([day, counts]) => [
    formatDay(day), kinds.map((kind) => `${kindName(kind)} ${counts[kind] || 0}`).join(", ")]);
  figure.append(heading, chart, legend, table(caption, rows));
  return figure;
}
