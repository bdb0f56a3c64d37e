// Follows an execution's event stream: stdout, stderr and log lines interleaved in the order
// the daemon sent them (colours kept), the state as it changes, then the record from `end`.
// A lost stream is not retried blindly (EventSource would replay from the start): the record
// is read as it stands, so the page never waits silently.
import { api, enc } from "./api";
import { ansiSpans } from "./ansi";
import { h } from "./dom";
import type { ExecutionRecord } from "./record";

export interface Follow {
  close(): void;
}

export function follow(
  id: string,
  out: HTMLElement,
  on: { state(s: string): void; end(r: ExecutionRecord, lost?: boolean): void; error(e: unknown): void },
): Follow {
  let ended = false;
  const colours = { stdout: { classes: [] as string[] }, stderr: { classes: [] as string[] } };
  const events = new EventSource(`/api/v1/executions/${enc(id)}/events`);
  const line = (kind: "stdout" | "stderr" | "log", nodes: Node[]) => {
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.appendChild(h("span", { class: `line ${kind}`, "data-stream": kind }, ...nodes, "\n"));
    if (atBottom) out.scrollTop = out.scrollHeight;
  };
  for (const kind of ["stdout", "stderr"] as const) {
    events.addEventListener(kind, (e) => {
      try {
        const text = String(JSON.parse((e as MessageEvent).data).text).replace(/\n$/, "");
        line(kind, ansiSpans(text, colours[kind]));
      } catch {
        /* a malformed event is skipped */
      }
    });
  }
  events.addEventListener("log", (e) => {
    try {
      const rec = JSON.parse((e as MessageEvent).data) as { level?: string; message?: string; fields?: unknown };
      const fields = rec.fields && Object.keys(rec.fields).length ? ` ${JSON.stringify(rec.fields)}` : "";
      line("log", [h("span", { class: `level level-${(rec.level ?? "info").toLowerCase()}` }, (rec.level ?? "log").toUpperCase()), document.createTextNode(` ${rec.message ?? ""}${fields}`)]);
    } catch {
      /* skipped */
    }
  });
  events.addEventListener("state", (e) => {
    try {
      on.state(JSON.parse((e as MessageEvent).data).state);
    } catch {
      /* skipped */
    }
  });
  events.addEventListener("end", (e) => {
    ended = true;
    events.close();
    try {
      on.end(JSON.parse((e as MessageEvent).data));
    } catch (err) {
      on.error(err);
    }
  });
  events.onerror = () => {
    events.close();
    if (ended) return;
    api<ExecutionRecord>("GET", `/v1/executions/${enc(id)}`)
      .then((r) => on.end(r, true))
      .catch(on.error);
  };
  return {
    close() {
      ended = true;
      events.close();
    },
  };
}
