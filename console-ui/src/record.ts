// An execution's record as a person reads it: state, result, the error with its code and what
// to do about it, timings and resources; the whole record below, folded.
import { h, when } from "./dom";

/** What each error code means and where to look (README, "Executions"). */
const HINTS: Record<string, string> = {
  E001: "init or build failed: look at the version's prepare log (Versions) or the script's import-time errors",
  E002: "the script raised an error: see its message and trace, and its stderr above",
  E003: "the memory limit was hit: raise limits.memory_mb in the manifest, or use less",
  E004: "the time limit was hit: raise limits.timeout_ms in the manifest, or make the script faster",
  E005: "a system error (executor crash, protocol fault, restart): see the daemon's log; retrying may help",
  E006: "the request was rejected (invalid parameters, disabled, overload): fix the payload or try later",
};

export interface ExecutionRecord {
  id: string;
  script: string;
  version: string;
  state: string;
  payload?: unknown;
  result?: unknown;
  error?: { code: string; kind: string; message: string; trace?: string | null } | null;
  stdout?: string;
  stderr?: string;
  logs?: { level: string; message: string }[];
  cold?: boolean;
  caller?: { uid: number; gid: number; pid: number };
  timings?: Record<string, number | string | null>;
  resources?: Record<string, number | null>;
  attempt?: number;
  exit_code?: number | null;
}

export const TERMINAL = new Set(["completed", "failed", "timeout", "cancelled"]);

const ms = (v: unknown) => (typeof v === "number" ? `${v < 10 ? v.toFixed(2) : Math.round(v)} ms` : "—");

export function recordView(r: ExecutionRecord): HTMLElement {
  const t = r.timings ?? {};
  const res = r.resources ?? {};
  const mem = typeof res.peak_memory_bytes === "number" ? `${(res.peak_memory_bytes / 1048576).toFixed(1)} MiB` : "—";
  return h(
    "div",
    { class: "record", "data-state": r.state },
    h("p", { class: "record-state" }, h("strong", { class: `state-${r.state}` }, r.state), ` · ${r.script} @ ${r.version.slice(0, 19)}… · `, r.cold ? "cold start" : "warm", r.attempt && r.attempt > 1 ? ` · attempt ${r.attempt}` : ""),
    r.error
      ? h(
          "div",
          { class: "problem", role: "alert" },
          h("strong", {}, `${r.error.code} ${r.error.kind}: `, r.error.message),
          HINTS[r.error.code] ? h("p", { class: "hint" }, "hint: ", HINTS[r.error.code]) : null,
          r.error.trace ? h("pre", { class: "trace" }, r.error.trace) : null,
        )
      : null,
    r.result !== undefined && r.result !== null ? h("div", {}, h("h4", {}, "Result"), h("pre", { class: "result" }, JSON.stringify(r.result, null, 2))) : null,
    h(
      "dl",
      { class: "figures" },
      h("dt", {}, "queued"), h("dd", {}, when(t.queued_at as string)),
      h("dt", {}, "waited"), h("dd", {}, ms(t.queue_ms)),
      h("dt", {}, "cold start"), h("dd", {}, ms(t.cold_start_ms)),
      h("dt", {}, "ran"), h("dd", {}, ms(t.run_ms)),
      h("dt", {}, "total"), h("dd", {}, ms(t.total_ms)),
      h("dt", {}, "CPU user/system"), h("dd", {}, `${ms(res.cpu_user_ms)} / ${ms(res.cpu_system_ms)}`),
      h("dt", {}, "peak memory"), h("dd", {}, mem),
      h("dt", {}, "caller"), h("dd", {}, r.caller ? `uid ${r.caller.uid}, pid ${r.caller.pid}` : "—"),
    ),
    h("details", {}, h("summary", {}, "The whole record"), h("pre", { class: "record-json" }, JSON.stringify(r, null, 2))),
  );
}
