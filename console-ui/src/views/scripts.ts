// Scripts: the list with search and runtime and tag filters, disable/enable, and "New script"
// from a per-runtime template or a clone of one of the daemon's samples.
import { api, enc } from "../api";
import { h, field, table } from "../dom";
import { fail, say, flash, errorBlock } from "../status";
import { templates } from "../templates";
import { go } from "../nav";
import { saveDraft } from "./draft";

interface ScriptSummary {
  name: string;
  disabled: boolean;
  latest: string;
  runtime: string;
  description: string;
  labels: string[];
  tags: string[];
  versions: number;
  updated_at: string;
}

interface Sample {
  id: string;
  runtime: string;
  description: string;
}

export function scriptsView(root: HTMLElement, _args: string[], query: URLSearchParams): () => void {
  const q = h("input", { type: "search", autocomplete: "off", value: query.get("q") ?? "" });
  const runtime = h("select", {}, h("option", { value: "" }, "any"));
  const tag = h("input", { type: "text", autocomplete: "off", placeholder: "e.g. latest, prod", value: query.get("tag") ?? "" });
  const list = h("div", { id: "script-list", "aria-live": "polite" });
  const filters = h("form", { class: "filters", role: "search", onsubmit: (e: Event) => e.preventDefault() },
    field("Search", q), field("Runtime", runtime), field("Tag or label", tag));

  let asked = 0;
  async function refresh(): Promise<void> {
    const mine = ++asked;
    const params = new URLSearchParams();
    if (q.value.trim()) params.set("q", q.value.trim());
    if (runtime.value) params.set("runtime", runtime.value);
    if (tag.value.trim()) params.set("tag", tag.value.trim());
    try {
      const scripts = await api<ScriptSummary[]>("GET", `/v1/scripts${params.size ? `?${params}` : ""}`);
      if (mine !== asked) return; // a newer question is on its way
      list.replaceChildren(render(scripts, refresh));
      say(`${scripts.length} script(s)`);
    } catch (e) {
      if (mine === asked) list.replaceChildren(fail(e));
    }
  }
  for (const el of [q, tag]) el.addEventListener("input", () => void refresh());
  runtime.addEventListener("change", () => void refresh());

  root.append(
    h("h2", { tabindex: "-1" }, "Scripts"),
    filters,
    list,
    newScript(),
  );
  // Runtimes for the filter and the template picker; the list does not wait for them.
  void api<{ name: string }[] | { runtimes: { name: string }[] }>("GET", "/v1/runtimes")
    .then((r) => {
      const names = (Array.isArray(r) ? r : r.runtimes ?? []).map((x) => x.name).sort();
      for (const n of names) runtime.append(h("option", { value: n }, n));
    })
    .catch(() => undefined);
  void refresh();
  return () => {
    asked++;
  };
}

function render(scripts: ScriptSummary[], refresh: () => Promise<void>): Node {
  if (!scripts.length) return h("p", { class: "muted" }, "No script matches.");
  const rows = scripts.map((s) => [
    h("a", { href: `#/editor/${enc(s.name)}`, class: "name" }, s.name),
    document.createTextNode(s.runtime),
    h("span", { class: "tags" }, ...s.tags.map((t) => h("span", { class: "tag" }, t)), ...s.labels.map((l) => h("span", { class: "label" }, l))),
    document.createTextNode(s.description),
    document.createTextNode(s.disabled ? "disabled" : "enabled"),
    h(
      "span",
      { class: "actions" },
      h("a", { href: `#/run/${enc(s.name)}`, class: "button", "aria-label": `Run ${s.name}` }, "Run"),
      h("a", { href: `#/versions/${enc(s.name)}`, class: "button", "aria-label": `Versions of ${s.name}` }, "Versions"),
      h(
        "button",
        {
          type: "button",
          "aria-label": `${s.disabled ? "Enable" : "Disable"} ${s.name}`,
          onclick: async () => {
            try {
              await api("POST", `/v1/scripts/${enc(s.name)}/${s.disabled ? "enable" : "disable"}`, { body: {} });
              say(`${s.name} ${s.disabled ? "enabled" : "disabled"}`, "ok");
              await refresh();
            } catch (e) {
              fail(e);
            }
          },
        },
        s.disabled ? "Enable" : "Disable",
      ),
    ),
  ]);
  return table(["Name", "Runtime", "Tags and labels", "Description", "State", "Actions"], rows, "Scripts");
}

/** "New script": a name and a runtime template, or a sample to clone. */
function newScript(): HTMLElement {
  const name = h("input", { type: "text", required: true, pattern: "[a-z0-9][a-z0-9._\\-]{0,63}", autocomplete: "off" });
  const runtime = h("select", {}, ...Object.keys(templates).map((r) => h("option", { value: r }, r)));
  const out = h("div", { "aria-live": "polite" });
  const create = h(
    "form",
    {
      class: "inline",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const make = templates[runtime.value];
        if (!make || !name.reportValidity()) return;
        saveDraft(name.value, make());
        go(`#/editor/${enc(name.value)}?draft=1`);
      },
    },
    field("New script's name", name, "lowercase letters, digits, . _ -"),
    field("Template", runtime),
    h("button", { type: "submit" }, "Create from template"),
  );
  const samples = h("div", {}, h("p", { class: "muted" }, "Loading samples…"));
  void api<Sample[]>("GET", "/v1/samples")
    .then((list) => {
      const rows = list.map((s) => [
        document.createTextNode(s.id),
        document.createTextNode(s.runtime),
        document.createTextNode(s.description),
        h(
          "button",
          {
            type: "button",
            "aria-label": `Clone ${s.id}`,
            onclick: async () => {
              const as = name.value.trim() || s.id;
              try {
                await api("POST", `/v1/samples/${enc(s.id)}/clone`, { body: { name: as } });
                flash(`cloned ${s.id} as ${as}`, "ok");
                go(`#/editor/${enc(as)}`);
              } catch (e) {
                out.replaceChildren(errorBlock(e));
                fail(e);
              }
            },
          },
          "Clone",
        ),
      ]);
      samples.replaceChildren(rows.length ? table(["Sample", "Runtime", "Description", ""], rows, "Samples") : h("p", { class: "muted" }, "The daemon has no samples."));
    })
    .catch((e) => samples.replaceChildren(errorBlock(e)));
  return h(
    "section",
    { "aria-labelledby": "new-title" },
    h("h3", { id: "new-title" }, "New script"),
    create,
    out,
    h("details", {}, h("summary", {}, "…or clone a sample (named as above, or as the sample)"), samples),
  );
}
