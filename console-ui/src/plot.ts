// Small hand-drawn SVG plots: lines over time and bars. Axis labels as text, a title and a
// text summary for screen readers.

const NS = "http://www.w3.org/2000/svg";
const W = 520;
const H = 180;
const PAD = { l: 52, r: 10, t: 10, b: 26 };
export const COLOURS = ["#0b5cad", "#b3261e", "#1b7f3b", "#8a4f00", "#6b3fa0", "#00727a"];

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function frame(title: string, yMax: number, unit: string): { svg: SVGSVGElement; y: (v: number) => number } {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "plot" });
  svg.appendChild(el("title", {}, title));
  const y = (v: number) => H - PAD.b - ((H - PAD.t - PAD.b) * v) / (yMax || 1);
  for (const f of [0, 0.5, 1]) {
    const v = yMax * f;
    svg.appendChild(el("line", { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(el("text", { x: PAD.l - 4, y: y(v) + 4, "text-anchor": "end", class: "axis" }, `${fmt(v)}${unit}`));
  }
  return { svg, y };
}

export function fmt(v: number): string {
  if (v === 0) return "0";
  if (v >= 100) return Math.round(v).toString();
  if (v >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

export interface Series {
  name: string;
  points: [number, number | null][]; // [time ms, value]
}

/** Lines over the last `maxSpanMs` at most: the axis starts at the first point (20 s at least),
 * so a plot opened a moment ago is not a sliver at its right edge. Each point is a dot too. */
export function lines(title: string, series: Series[], unit: string, maxSpanMs: number): SVGSVGElement {
  const now = Date.now();
  const first = Math.min(now, ...series.flatMap((s) => s.points.map(([t]) => t)));
  const spanMs = Math.min(maxSpanMs, Math.max(20_000, now - first + 2000));
  const values = series.flatMap((s) => s.points.map(([, v]) => v ?? 0));
  const { svg, y } = frame(title, Math.max(...values, 0) * 1.1 || 1, unit);
  const x = (t: number) => PAD.l + ((W - PAD.l - PAD.r) * (t - (now - spanMs))) / spanMs;
  series.forEach((s, i) => {
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      svg.appendChild(el("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.5, fill: COLOURS[i % COLOURS.length] }));
    }
    if (d) svg.appendChild(el("path", { d, fill: "none", stroke: COLOURS[i % COLOURS.length], "stroke-width": 2 }));
  });
  const ago = spanMs >= 120_000 ? `${Math.round(spanMs / 60_000)} min ago` : `${Math.round(spanMs / 1000)} s ago`;
  svg.appendChild(el("text", { x: PAD.l, y: H - 6, class: "axis" }, ago));
  svg.appendChild(el("text", { x: W - PAD.r, y: H - 6, "text-anchor": "end", class: "axis" }, "now"));
  return svg;
}

export function bars(title: string, labels: string[], values: number[], unit: string): SVGSVGElement {
  const { svg, y } = frame(title, Math.max(...values, 0) * 1.1 || 1, unit);
  const slot = (W - PAD.l - PAD.r) / Math.max(labels.length, 1);
  labels.forEach((label, i) => {
    const x = PAD.l + i * slot;
    svg.appendChild(el("rect", { x: x + 2, y: y(values[i]), width: Math.max(slot - 4, 1), height: Math.max(y(0) - y(values[i]), 0), fill: COLOURS[0] }));
    if (labels.length <= 12 || i % 2 === 0) svg.appendChild(el("text", { x: x + slot / 2, y: H - 10, "text-anchor": "middle", class: "axis small" }, label));
  });
  return svg;
}
