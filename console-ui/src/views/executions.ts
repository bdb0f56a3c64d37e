// Executions: the history (newest first) with script and state filters and paging by the
// last id seen; a detail view with the output replayed, cancel and replay.
import { api, enc } from "../api";
import { h, field, table, when } from "../dom";
import { fail, say, flash, errorBlock } from "../status";
import { follow, type Follow } from "../output";
import { recordView, TERMINAL, type ExecutionRecord } from "../record";
import { go } from "../nav";

const PAGE = 20;
const STATES = ["", "queued", "provisioning", "running", "completed", "failed", "timeout", "cancelled"];

export async function executionsView(root: HTMLElement, args: string[], query: URLSearchParams): Promise<() => void> {
  if (args[0]) return detail(root, args[0]);
  root.append(h("h2", { tabindex: "-1" }, "Executions"));
  const script = h("input", { type: "text", autocomplete: "off", value: query.get("script") ?? "" });
  const state = h("select", {}, ...STATES.map((s) => h("option", { value: s, selected: s === (query.get("state") ?? "") }, s || "any")));
  const list = h("div", { "aria-live": "polite" });
  const older = h("button", { type: "button" }, "Older");
  const newer = h("button", { type: "button" }, "Newer");
  const cursors: (string | undefined)[] = [undefined];
  let asked = 0;

  async function load(): Promise<void> {
    const mine = ++asked;
    const p = new URLSearchParams({ limit: String(PAGE) });
    if (script.value.trim()) p.set("script", script.value.trim());
    if (state.value) p.set("state", state.value);
    const before = cursors[cursors.length - 1];
    if (before) p.set("before", before);
    try {
      const records = await api<ExecutionRecord[]>("GET", `/v1/executions?${p}`);
      if (mine !== asked) return;
      const rows = records.map((r) => [
        h("a", { href: `#/executions/${enc(r.id)}`, class: "mono" }, r.id),
        document.createTextNode(r.script),
        h("span", { class: `state state-${r.state}` }, r.state),
        document.createTextNode(when(r.timings?.queued_at as string)),
        document.createTextNode(typeof r.timings?.total_ms === "number" ? `${Math.round(r.timings.total_ms as number)} ms` : "—"),
        document.createTextNode(r.error ? `${r.error.code} ${r.error.kind}` : ""),
      ]);
      list.replaceChildren(rows.length ? table(["Id", "Script", "State", "Queued", "Total", "Error"], rows, "Executions") : h("p", { class: "muted" }, "No execution matches."));
      older.disabled = records.length < PAGE;
      newer.disabled = cursors.length === 1;
      older.onclick = () => {
        cursors.push(records[records.length - 1]?.id);
        void load();
      };
      say(`page ${cursors.length}: ${records.length} execution(s)`);
    } catch (e) {
      if (mine === asked) list.replaceChildren(fail(e));
    }
  }
  newer.addEventListener("click", () => {
    cursors.pop();
    void load();
  });
  const refilter = () => {
    cursors.length = 1;
    void load();
  };
  script.addEventListener("input", refilter);
  state.addEventListener("change", refilter);
  root.append(
    h("form", { class: "filters", role: "search", onsubmit: (e: Event) => e.preventDefault() }, field("Script", script), field("State", state)),
    list,
    h("div", { class: "pager" }, newer, older),
  );
  await load();
  return () => {
    asked++;
  };
}

async function detail(root: HTMLElement, id: string): Promise<() => void> {
  root.append(h("h2", { tabindex: "-1" }, "Execution ", h("span", { class: "mono" }, id)), h("p", {}, h("a", { href: "#/executions" }, "← all executions")));
  const output = h("pre", { class: "output", "aria-label": "Output", tabindex: "0" });
  const body = h("div", {});
  const actions = h("div", { class: "toolbar" });
  root.append(actions, h("h3", {}, "Output"), output, body);
  let following: Follow | null = null;
  const show = (r: ExecutionRecord) => {
    body.replaceChildren(recordView(r));
    const cancel = h("button", { type: "button", disabled: TERMINAL.has(r.state) }, "Cancel");
    cancel.addEventListener("click", async () => {
      try {
        await api("POST", `/v1/executions/${enc(id)}/cancel`, { body: {} });
        say(`${id}: cancel asked`, "ok");
      } catch (e) {
        body.prepend(errorBlock(e));
        fail(e);
      }
    });
    const replay = h("button", { type: "button" }, "Replay");
    replay.addEventListener("click", async () => {
      try {
        const again = await api<{ id: string }>("POST", `/v1/executions/${enc(id)}/replay`, { body: {}, headers: { prefer: "respond-async" } });
        flash(`replayed as ${again.id}`, "ok");
        go(`#/executions/${enc(again.id)}`);
      } catch (e) {
        body.prepend(errorBlock(e));
        fail(e);
      }
    });
    actions.replaceChildren(cancel, replay, h("a", { class: "button", href: `#/run/${enc(r.script)}?payload=${enc(JSON.stringify(r.payload ?? {}))}` }, "Run again with changes…"));
  };
  const first = await api<ExecutionRecord>("GET", `/v1/executions/${enc(id)}`);
  show(first);
  following = follow(id, output, {
    state: () => undefined,
    end: (r) => show(r),
    error: (e) => body.prepend(errorBlock(e)),
  });
  return () => following?.close();
}
