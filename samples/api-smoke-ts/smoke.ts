// API smoke test: GET a URL with fetch, check the status and (optionally) a field of the JSON
// body. Without a `url` it starts a tiny node:http server on 127.0.0.1 (an ephemeral port),
// tests that, and closes it, so the sample works offline. A failed check fails the invocation
// (error kind SmokeTestFailed) after logging the full report.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SmokeEvent {
  url?: string;
  /** The status the response must have; default 200. */
  expect_status?: number;
  /** Dotted path into the JSON body (`status`, `build.version`, `items.0.id`). */
  expect_field?: string;
  /** The value the field must equal (deep equality); without it the field must only exist. */
  expect_value?: unknown;
  timeout_ms?: number;
  /** Self-hosted test only: the path to request. */
  path?: string;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SmokeReport {
  url: string;
  self_hosted: boolean;
  ok: boolean;
  status: number | null;
  content_type: string | null;
  ms: number;
  checks: Check[];
}

/** The part of runwarm's handler context this script uses. */
export interface Context {
  executionId: string;
  remainingMs(): number;
  log(message: string, level?: "debug" | "info" | "warn" | "error", fields?: Record<string, unknown>): void;
}

export class SmokeTestFailed extends Error {
  constructor(readonly report: SmokeReport) {
    const failed = report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    super(`GET ${report.url}: ${failed.join("; ")}`);
    this.name = "SmokeTestFailed";
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const SELF_ROUTES: Record<string, Json> = {
  "/health": { status: "ok", checks: { db: "ok", cache: "ok" } },
  "/version": { name: "api-smoke-ts", build: { version: "1.4.2", commit: "abc1234" } },
};

/** Starts the self-hosted API on 127.0.0.1 with an ephemeral port. */
async function startSelfHosted(): Promise<{ server: Server; base: string }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://self").pathname;
    const body = SELF_ROUTES[path];
    const status = req.method !== "GET" ? 405 : body === undefined ? 404 : 200;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body ?? { error: status === 405 ? "method not allowed" : "not found" }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { address, port } = server.address() as AddressInfo;
  return { server, base: `http://${address}:${port}` };
}

function fieldAt(body: Json, path: string): { found: boolean; value?: Json } {
  let cur: Json = body;
  for (const key of path.split(".")) {
    if (cur !== null && typeof cur === "object" && key in cur) {
      cur = (cur as Record<string, Json>)[key];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: cur };
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function smoke(url: string, event: SmokeEvent, selfHosted: boolean): Promise<SmokeReport> {
  const expectStatus = event.expect_status ?? 200;
  const checks: Check[] = [];
  const started = performance.now();
  let status: number | null = null;
  let contentType: string | null = null;
  try {
    const res = await fetch(url, {
      headers: { accept: "application/json", "user-agent": "runwarm-api-smoke" },
      signal: AbortSignal.timeout(event.timeout_ms ?? 5000),
    });
    status = res.status;
    contentType = res.headers.get("content-type");
    const text = await res.text();
    checks.push({
      name: "status",
      ok: res.status === expectStatus,
      detail: `${res.status} (expected ${expectStatus})`,
    });
    if (event.expect_field !== undefined) {
      let body: Json | undefined;
      try {
        body = JSON.parse(text) as Json;
      } catch {
        checks.push({ name: "json", ok: false, detail: `body is not JSON: ${text.slice(0, 80)}` });
      }
      if (body !== undefined) {
        const { found, value } = fieldAt(body, event.expect_field);
        const wanted = event.expect_value;
        const ok = found && (wanted === undefined || deepEqual(value, wanted));
        const detail = !found
          ? `${event.expect_field} is missing`
          : `${event.expect_field} = ${JSON.stringify(value)}` +
            (wanted === undefined ? "" : ` (expected ${JSON.stringify(wanted)})`);
        checks.push({ name: "field", ok, detail });
      }
    }
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === "TimeoutError" ? "timed out" : err.cause?.code ?? err.cause?.message ?? err.message;
    checks.push({ name: "request", ok: false, detail: `request failed: ${why}` });
  }
  const ms = Math.round((performance.now() - started) * 100) / 100;
  return { url, self_hosted: selfHosted, ok: checks.every((c) => c.ok), status, content_type: contentType, ms, checks };
}

export async function handler(event: SmokeEvent, context: Context): Promise<SmokeReport> {
  let report: SmokeReport;
  if (event.url) {
    report = await smoke(event.url, event, false);
  } else {
    const { server, base } = await startSelfHosted();
    try {
      const path = event.path ?? "/health";
      const defaults: SmokeEvent = path === "/health" ? { expect_field: "status", expect_value: "ok" } : {};
      report = await smoke(base + path, { ...defaults, ...event }, true);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
  context.log("smoke test", report.ok ? "info" : "error", { url: report.url, status: report.status, ms: report.ms });
  if (!report.ok) throw new SmokeTestFailed(report);
  return report;
}
