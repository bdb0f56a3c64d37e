// Run: a form generated from the script's params schema, sync or async invoke, output live
// from the event stream, then the record (result, error with code and hint, timings,
// resources).
import { api, enc } from "../api";
import { h, field, append } from "../dom";
import { fail, say, errorBlock } from "../status";
import { schemaForm } from "../schemaform";
import { follow, type Follow } from "../output";
import { recordView, type ExecutionRecord } from "../record";
import { go } from "../nav";

export async function runView(root: HTMLElement, args: string[], query: URLSearchParams): Promise<() => void> {
  const name = args[0];
  root.append(h("h2", { tabindex: "-1" }, name ? `Run — ${name}` : "Run"));
  const scripts = await api<{ name: string }[]>("GET", "/v1/scripts");
  const picker = h("select", { onchange: (e: Event) => go(`#/run/${enc((e.target as HTMLSelectElement).value)}`) }, h("option", { value: "" }, "(pick a script)"), ...scripts.map((s) => h("option", { value: s.name, selected: s.name === name }, s.name)));
  root.append(field("Script", picker));
  if (!name) return () => undefined;

  const detail = await api<{ tags: Record<string, string>; latest: string; disabled: boolean }>("GET", `/v1/scripts/${enc(name)}`);
  const version = await api<{ id: string; manifest: { params?: unknown; description?: string } }>("GET", `/v1/scripts/${enc(name)}/versions/${enc(query.get("version") ?? detail.latest)}`);
  let initial: Record<string, unknown> = {};
  try {
    initial = JSON.parse(query.get("payload") ?? "{}");
  } catch {
    /* a bad payload in the address starts an empty form */
  }
  const form = schemaForm(version.manifest.params, initial);
  const tagPick = h("select", {}, ...Object.keys(detail.tags).map((t) => h("option", { value: t, selected: t === "latest" }, `${t} (${detail.tags[t].slice(7, 19)})`)));
  const asyncMode = h("input", { type: "radio", name: "mode", value: "async", checked: true });
  const syncMode = h("input", { type: "radio", name: "mode", value: "sync" });
  const invoke = h("button", { type: "submit", class: "primary" }, "Invoke");
  const status = h("p", { class: "run-state", role: "status" });
  const output = h("pre", { class: "output", "aria-label": "Output", "aria-live": "polite", tabindex: "0" });
  const result = h("div", { class: "run-result" });
  let following: Follow | null = null;

  const submit = async (e: Event) => {
    e.preventDefault();
    const v = form.value();
    if (!v.ok) {
      say(v.message, "error");
      status.textContent = v.message;
      status.className = "run-state error";
      v.control?.focus();
      return;
    }
    following?.close();
    output.replaceChildren();
    result.replaceChildren();
    status.className = "run-state";
    const target = tagPick.value && tagPick.value !== "latest" ? `?tag=${enc(tagPick.value)}` : "";
    const show = (r: ExecutionRecord) => {
      result.replaceChildren(recordView(r));
      status.textContent = `${r.id}: ${r.state}`;
      status.className = `run-state ${r.state === "completed" ? "ok" : "error"}`;
      say(`${name}: ${r.state}`, r.state === "completed" ? "ok" : "error");
    };
    invoke.disabled = true;
    try {
      if (asyncMode.checked) {
        const accepted = await api<{ id: string }>("POST", `/v1/scripts/${enc(name)}/invoke${target}`, { body: v.payload, headers: { prefer: "respond-async" } });
        status.textContent = `${accepted.id}: queued`;
        following = follow(accepted.id, output, {
          state: (s) => (status.textContent = `${accepted.id}: ${s}`),
          end: (r, lost) => {
            show(r);
            if (lost) status.textContent += " (the event stream was lost; the record as it stands)";
          },
          error: (err) => result.replaceChildren(fail(err)),
        });
      } else {
        status.textContent = "running (synchronous: the answer comes when it ends)…";
        const r = await api<ExecutionRecord>("POST", `/v1/scripts/${enc(name)}/invoke${target}`, { body: v.payload, timeout: 15 * 60_000 });
        show(r);
        // The stream replays a finished execution, so its output shows in order here too.
        following = follow(r.id, output, { state: () => undefined, end: () => undefined, error: () => undefined });
      }
    } catch (err) {
      result.replaceChildren(errorBlock(err));
      fail(err);
      status.textContent = "";
    } finally {
      invoke.disabled = false;
    }
  };

  append(
    root,
    version.manifest.description ? h("p", { class: "muted" }, version.manifest.description) : null,
    detail.disabled ? h("p", { class: "note warn" }, "This script is disabled: invocations are refused until it is enabled (Scripts).") : null,
    h(
      "form",
      { class: "run-form", novalidate: true, onsubmit: submit },
      h("fieldset", {}, h("legend", {}, "Parameters"), form.element),
      h("div", { class: "row" },
        field("Version tag", tagPick),
        h("fieldset", { class: "modes" }, h("legend", {}, "Invoke"), h("label", { class: "check" }, asyncMode, " async, output live"), h("label", { class: "check" }, syncMode, " sync, wait for the answer")),
      ),
      invoke,
    ),
    status,
    h("h3", {}, "Output"),
    output,
    result,
  );
  return () => following?.close();
}
