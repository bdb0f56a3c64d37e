// "Register": creates the version, then follows its prepare (dependencies, build) until it
// finishes, showing the step, each step's report and log as they come.
import { api, enc } from "../api";
import { h } from "../dom";
import { errorBlock, say } from "../status";

interface StepReport {
  cached?: boolean;
  duration_ms?: number;
  log?: string;
  output?: string;
  error?: string;
  [k: string]: unknown;
}

interface PrepareStatus {
  state: string;
  step?: string;
  duration_ms?: number;
  error?: string;
  toolchain?: StepReport;
  dependencies?: StepReport;
  build?: StepReport;
  [k: string]: unknown;
}

const TERMINAL = new Set(["ready", "failed", "evicted"]);

export async function register(name: string, body: unknown, panel: HTMLElement): Promise<string | null> {
  const state = h("p", { class: "prepare-state", role: "status" }, "registering…");
  const log = h("pre", { class: "log prepare-log", "aria-label": "Prepare log" });
  panel.replaceChildren(h("h3", {}, "Register"), state, log);
  let answer: { version: string; created: boolean; prepare?: string };
  try {
    answer = await api("POST", "/v1/scripts", { body, timeout: 60_000 });
  } catch (e) {
    panel.appendChild(errorBlock(e));
    say("registration failed", "error");
    return null;
  }
  const version = answer.version;
  say(`${name}: ${answer.created ? "registered" : "already registered as"} ${version.slice(0, 19)}`, "ok");
  state.textContent = `version ${version.slice(0, 19)}…: prepare ${answer.prepare ?? "not needed"}`;
  panel.dataset.version = version;
  if (!answer.prepare) {
    panel.dataset.prepare = "done";
    return version;
  }
  // Polled twice a second: the daemon has no stream for prepare, and the log grows in steps.
  for (let i = 0; i < 1200; i++) {
    let status: PrepareStatus | undefined;
    try {
      const v = await api<{ prepare?: PrepareStatus }>("GET", `/v1/scripts/${enc(name)}/versions/${enc(version)}`);
      status = v.prepare;
    } catch (e) {
      panel.appendChild(errorBlock(e));
      return version;
    }
    if (!status) {
      state.textContent = `version ${version.slice(0, 19)}…: prepare done`;
      panel.dataset.prepare = "done";
      return version;
    }
    const steps = (["toolchain", "dependencies", "build"] as const)
      .filter((s) => status?.[s])
      .map((s) => `${s}: ${describe(status?.[s] as StepReport)}`);
    state.textContent = `prepare ${status.state}${status.step ? ` (${status.step})` : ""}${status.duration_ms !== undefined ? ` in ${Math.round(status.duration_ms)} ms` : ""}`;
    log.textContent = [...steps, ...logsOf(status)].join("\n");
    if (TERMINAL.has(status.state)) {
      panel.dataset.prepare = status.state === "failed" ? "failed" : "done";
      state.className = `prepare-state ${status.state === "failed" ? "error" : "ok"}`;
      if (status.state === "failed") say(`prepare failed: ${status.error ?? "see its log"}`, "error");
      return version;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return version;
}

function describe(r: StepReport): string {
  const parts = [];
  if (r.cached) parts.push("cached");
  if (r.duration_ms !== undefined) parts.push(`${Math.round(r.duration_ms)} ms`);
  if (r.error) parts.push(`error: ${r.error}`);
  return parts.join(", ") || "running";
}

function logsOf(s: PrepareStatus): string[] {
  const out: string[] = [];
  for (const step of [s.toolchain, s.dependencies, s.build]) {
    for (const k of ["log", "output"] as const) if (typeof step?.[k] === "string" && step[k]) out.push(String(step[k]));
  }
  if (s.error) out.push(`error: ${s.error}`);
  return out;
}
