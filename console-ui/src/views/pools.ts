// Pools and health: live pools (idle, busy, starting, waiting), the daemon's sandbox layers as
// measured at its start, and plots from its own /metrics scraped every 2 s while the view is
// open: invocations per second, latency percentiles per script, the cold-start distribution.
import { api } from "../api";
import { h, table, field } from "../dom";
import { errorBlock } from "../status";
import { parseMetrics, sumBy, buckets, quantile, type Sample } from "../metrics";
import { lines, bars, fmt, COLOURS, type Series } from "../plot";

const EVERY_MS = 2000;
const SPAN_MS = 5 * 60_000;

interface Pool {
  script: string;
  version: string;
  idle: number;
  busy: number;
  starting: number;
  waiting: number;
  max: number;
  min_warm: number;
  spawned: number;
  start_failures: number;
  cold_start_ms_p50?: number | null;
}

interface Scrape {
  t: number;
  samples: Sample[];
}

export async function poolsView(root: HTMLElement): Promise<() => void> {
  root.append(h("h2", { tabindex: "-1" }, "Pools & health"));
  const pools = h("div", { "aria-live": "off" });
  const sandbox = h("div", {});
  const rate = h("figure", {}, h("figcaption", {}, "Invocations per second"));
  const latency = h("figure", {}, h("figcaption", {}, "Latency percentiles (p50, p95, p99)"));
  const cold = h("figure", {}, h("figcaption", {}, "Cold-start distribution (all starts since the daemon started)"));
  const which = h("select", {}, h("option", { value: "" }, "all scripts"));
  root.append(
    h("section", {}, h("h3", {}, "Pools"), pools),
    h("section", { class: "plots" }, h("h3", {}, "Figures"), field("Latency of", which), rate, latency, cold),
    h("section", {}, h("h3", {}, "Sandbox layers (measured at start)"), sandbox),
  );
  void api<{ sandbox?: Record<string, unknown>; workers?: Record<string, number>; uptime_s?: number; version?: string }>("GET", "/v1/info")
    .then((info) => sandbox.replaceChildren(layers(info)))
    .catch((e) => sandbox.replaceChildren(errorBlock(e)));

  const scrapes: Scrape[] = [];
  let stopped = false;
  let timer = 0;
  async function tick(): Promise<void> {
    const [p, m] = await Promise.allSettled([
      api<Pool[]>("GET", "/v1/pools", { timeout: 5000 }),
      fetch("/api/metrics", { headers: { accept: "text/plain" } }).then(async (r) => (r.ok ? r.text() : Promise.reject(new Error(`/metrics: ${r.status}`)))),
    ]);
    if (stopped) return;
    if (p.status === "fulfilled") pools.replaceChildren(poolTable(p.value));
    else pools.replaceChildren(errorBlock(p.reason));
    if (m.status === "fulfilled") {
      const now = Date.now();
      scrapes.push({ t: now, samples: parseMetrics(m.value) });
      while (scrapes.length && scrapes[0].t < now - SPAN_MS) scrapes.shift();
      draw();
    } else cold.replaceChildren(errorBlock(m.reason));
    timer = window.setTimeout(() => void tick(), EVERY_MS);
  }

  function draw(): void {
    const latest = scrapes[scrapes.length - 1];
    const scripts = [...sumBy(latest.samples, "runwarm_invocations_total", "script").keys()].filter(Boolean).sort();
    if (which.options.length - 1 !== scripts.length) {
      const keep = which.value;
      which.replaceChildren(h("option", { value: "" }, "all scripts"), ...scripts.map((s) => h("option", { value: s, selected: s === keep }, s)));
    }
    // Rate per script between consecutive scrapes.
    const top = scripts.slice(0, COLOURS.length);
    const rateSeries: Series[] = [{ name: "all", points: [] }, ...top.map((s) => ({ name: s, points: [] as [number, number | null][] }))];
    for (let i = 1; i < scrapes.length; i++) {
      const dt = (scrapes[i].t - scrapes[i - 1].t) / 1000;
      const a = sumBy(scrapes[i - 1].samples, "runwarm_invocations_total", "script");
      const b = sumBy(scrapes[i].samples, "runwarm_invocations_total", "script");
      let all = 0;
      for (const [s, v] of b) all += Math.max(0, v - (a.get(s) ?? 0));
      rateSeries[0].points.push([scrapes[i].t, all / dt]);
      top.forEach((s, k) => rateSeries[k + 1].points.push([scrapes[i].t, Math.max(0, (b.get(s) ?? 0) - (a.get(s) ?? 0)) / dt]));
    }
    rate.replaceChildren(rate.firstChild as Node, lines("Invocations per second", rateSeries, "/s", SPAN_MS), legend(rateSeries.map((s) => s.name), current(rateSeries, "/s")));

    // Percentiles of the latency observed in each interval, for one script or all.
    const pick = (s: Sample[]) => {
      const byScript = buckets(s, "runwarm_invocation_duration_seconds", "script");
      if (which.value) return byScript.get(which.value);
      const merged = new Map<number, number>();
      for (const m of byScript.values()) for (const [le, c] of m) merged.set(le, (merged.get(le) ?? 0) + c);
      return merged;
    };
    const qs = [0.5, 0.95, 0.99];
    const latSeries: Series[] = qs.map((q) => ({ name: `p${Math.round(q * 100)}`, points: [] }));
    for (let i = 1; i < scrapes.length; i++) {
      const now = pick(scrapes[i].samples);
      const before = pick(scrapes[i - 1].samples);
      qs.forEach((q, k) => latSeries[k].points.push([scrapes[i].t, now ? (v => (v === null ? null : v * 1000))(quantile(q, now, before)) : null]));
    }
    latency.replaceChildren(latency.firstChild as Node, lines("Latency percentiles", latSeries, " ms", SPAN_MS), legend(latSeries.map((s) => s.name), current(latSeries, " ms")));

    // The cold-start histogram as bars: starts per bucket.
    const coldB = buckets(latest.samples, "runwarm_cold_start_seconds", "__all__").get("") ?? new Map<number, number>();
    const les = [...coldB.keys()].sort((a, b) => a - b);
    const counts = les.map((le, i) => (coldB.get(le) ?? 0) - (i ? coldB.get(les[i - 1]) ?? 0 : 0));
    let first = counts.findIndex((c) => c > 0);
    let last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
    if (first < 0) {
      first = 0;
      last = -1;
    }
    const lo = Math.max(0, first - 1);
    const hi = Math.min(les.length - 1, last + 1);
    const labels = les.slice(lo, hi + 1).map((le) => (le === Infinity ? "more" : `≤${fmt(le * 1000)}`));
    const total = counts.reduce((a, b) => a + b, 0);
    cold.replaceChildren(
      cold.firstChild as Node,
      total ? bars("Cold starts per duration bucket (ms)", labels, counts.slice(lo, hi + 1), "") : h("p", { class: "muted" }, "No cold start yet."),
      h("p", { class: "muted" }, `${total} cold start(s); bucket upper bounds in ms`),
    );
  }
  which.addEventListener("change", () => scrapes.length && draw());
  await tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function current(series: Series[], unit: string): string[] {
  return series.map((s) => {
    const v = s.points[s.points.length - 1]?.[1];
    return v === null || v === undefined ? "—" : `${fmt(v)}${unit}`;
  });
}

function legend(names: string[], values: string[]): HTMLElement {
  return h("ul", { class: "legend" }, ...names.map((n, i) => h("li", {}, h("span", { class: "swatch", "data-colour": String(i % COLOURS.length) }), ` ${n}: ${values[i]}`)));
}

function poolTable(list: Pool[]): Node {
  if (!list.length) return h("p", { class: "muted" }, "No pool yet: pools start with a script's first invocation (or min_warm).");
  return table(
    ["Script", "Version", "Idle", "Busy", "Starting", "Waiting", "Max", "Min warm", "Spawned", "Start failures", "Cold start p50"],
    list.map((p) => [
      document.createTextNode(p.script),
      h("span", { class: "mono" }, p.version.replace(/^sha256:/, "").slice(0, 12)),
      ...[p.idle, p.busy, p.starting, p.waiting, p.max, p.min_warm, p.spawned, p.start_failures].map((n) => document.createTextNode(String(n))),
      document.createTextNode(typeof p.cold_start_ms_p50 === "number" ? `${Math.round(p.cold_start_ms_p50)} ms` : "—"),
    ]),
    "Pools",
  );
}

function layers(info: { sandbox?: Record<string, unknown>; workers?: Record<string, number>; uptime_s?: number; version?: string }): Node {
  const rows: Node[][] = [];
  for (const [k, v] of Object.entries(info.sandbox ?? {})) {
    const text = typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.entries(v).map(([a, b]) => `${a} ${b === true ? "✓" : b === false ? "✗" : String(b)}`).join(", ")
      : Array.isArray(v) ? v.join(", ") : v === true ? "yes" : v === false ? "no" : String(v);
    rows.push([document.createTextNode(k.replace(/_/g, " ")), h("span", { class: v === false ? "error" : "" }, text)]);
  }
  const w = info.workers;
  if (w) rows.push([document.createTextNode("workers"), document.createTextNode(`${w.live} live of ${w.max}, ${w.waiting} waiting (queue max ${w.queue_max})`)]);
  if (info.uptime_s !== undefined) rows.push([document.createTextNode("uptime"), document.createTextNode(`${info.uptime_s} s (runwarmd ${info.version ?? ""})`)]);
  return table(["Layer", "State"], rows, "Sandbox layers");
}
