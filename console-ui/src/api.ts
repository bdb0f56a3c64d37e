// Calls to the daemon through the console's /api gateway. Every failure becomes an ApiError
// that carries the problem's code and hint, so each view shows them; every call has a time
// bound, so a slow daemon leaves the page usable with a message instead of a spinner forever.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly hint?: string,
    readonly body?: unknown,
  ) {
    super(`${status ? `${status} ` : ""}${code ? `${code}: ` : ""}${detail}`);
  }
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Milliseconds before the call is given up (default 15 s). */
  timeout?: number;
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT = 15_000;

export async function api<T = unknown>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DOMException("timeout", "TimeoutError")), opts.timeout ?? DEFAULT_TIMEOUT);
  opts.signal?.addEventListener("abort", () => abort.abort(opts.signal?.reason));
  const headers: Record<string, string> = { accept: "application/json", ...opts.headers };
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  let answer: Response;
  try {
    answer = await fetch(`/api${path}`, { method, headers, body, signal: abort.signal });
  } catch (e) {
    const timedOut = abort.signal.reason instanceof DOMException && abort.signal.reason.name === "TimeoutError";
    throw new ApiError(
      0,
      timedOut ? "timeout" : "unreachable",
      timedOut ? `${method} ${path} took over ${(opts.timeout ?? DEFAULT_TIMEOUT) / 1000} s` : `${method} ${path}: ${String(e)}`,
      timedOut ? "the daemon is slow or stuck; try again, or look at `runwarm info`" : "is `runwarm console` still running?",
    );
  } finally {
    clearTimeout(timer);
  }
  const text = await answer.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  if (!answer.ok) throw toError(answer.status, parsed);
  return parsed as T;
}

export function toError(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const p = body as Record<string, unknown>;
    const code = String(p.code ?? p.type ?? "").replace(/^.*\//, "");
    const detail = String(p.detail ?? p.title ?? JSON.stringify(body));
    return new ApiError(status, code, detail, typeof p.hint === "string" ? p.hint : undefined, body);
  }
  return new ApiError(status, "", String(body ?? ""));
}

export const enc = encodeURIComponent;
