// Versions: the list with labels, who registered, tags and prepare state; Monaco's diff
// editor between any two; moving a tag (a rollback) after a confirmation that shows what
// changes.
import { api, enc } from "../api";
import { h, field, table, when } from "../dom";
import { fail, say, errorBlock } from "../status";
import { loadMonaco } from "../monaco-loader";
import { go } from "../nav";
import { loadVersion, MANIFEST, type Bundle } from "./bundle";
import type * as M from "monaco-editor";

interface VersionItem {
  id: string;
  created_at: string;
  runtime: string;
  entry: string;
  description: string;
  tags: string[];
  label?: string;
  files: number;
  registered_by?: { uid: number; user?: string; name?: string } | null;
  prepare?: string;
}

const short = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);

export async function versionsView(root: HTMLElement, args: string[]): Promise<() => void> {
  const name = args[0];
  root.append(h("h2", { tabindex: "-1" }, name ? `Versions — ${name}` : "Versions"));
  if (!name) {
    const scripts = await api<{ name: string; versions: number }[]>("GET", "/v1/scripts");
    root.append(h("ul", {}, ...scripts.map((s) => h("li", {}, h("a", { href: `#/versions/${enc(s.name)}` }, s.name), ` (${s.versions})`))));
    return () => undefined;
  }
  const [detail, versions] = await Promise.all([
    api<{ tags: Record<string, string> }>("GET", `/v1/scripts/${enc(name)}`),
    api<VersionItem[]>("GET", `/v1/scripts/${enc(name)}/versions`),
  ]);
  const from = h("select", {}, ...versions.map((v, i) => h("option", { value: v.id, selected: i === Math.min(1, versions.length - 1) }, `${short(v.id)} ${v.label ?? ""} ${when(v.created_at)}`)));
  const to = h("select", {}, ...versions.map((v, i) => h("option", { value: v.id, selected: i === 0 }, `${short(v.id)} ${v.label ?? ""} ${when(v.created_at)}`)));
  const fileSel = h("select", {});
  const diffHost = h("div", { class: "diff-host", "aria-label": "Differences" });
  const confirmBox = h("div", { "aria-live": "polite" });
  const tagName = h("input", { type: "text", value: "latest", autocomplete: "off", pattern: "[a-z0-9][a-z0-9._\\-]{0,63}" });
  const tagTo = h("select", {}, ...versions.map((v) => h("option", { value: v.id }, `${short(v.id)} ${v.label ?? ""}`)));

  const by = (v: VersionItem) => (v.registered_by ? v.registered_by.user ?? v.registered_by.name ?? `uid ${v.registered_by.uid}` : "—");
  const rows = versions.map((v) => [
    h("span", { class: "mono", title: v.id }, short(v.id)),
    document.createTextNode(v.label ?? ""),
    document.createTextNode(when(v.created_at)),
    document.createTextNode(by(v)),
    h("span", { class: "tags" }, ...v.tags.map((t) => h("span", { class: "tag" }, t))),
    document.createTextNode(v.prepare ?? "—"),
    h("span", { class: "actions" },
      h("a", { class: "button", href: `#/editor/${enc(name)}?version=${enc(v.id)}` }, "Open"),
      v.tags.includes("latest") ? null : h("button", { type: "button", "aria-label": `Make ${short(v.id)} latest`, onclick: () => void proposeMove("latest", v.id) }, "Make latest…"),
    ),
  ]);
  root.append(
    table(["Version", "Label", "Registered", "By", "Tags", "Prepare", ""], rows, "Versions"),
    h("section", { "aria-labelledby": "tag-title" },
      h("h3", { id: "tag-title" }, "Move a tag"),
      h("form", { class: "inline", onsubmit: (e: Event) => { e.preventDefault(); void proposeMove(tagName.value.trim(), tagTo.value); } },
        field("Tag", tagName), field("To version", tagTo), h("button", { type: "submit" }, "Move…")),
      confirmBox),
    h("section", { "aria-labelledby": "diff-title" },
      h("h3", { id: "diff-title" }, "Compare"),
      h("form", { class: "inline", onsubmit: (e: Event) => { e.preventDefault(); void diff(); } },
        field("From", from), field("To", to), field("File", fileSel), h("button", { type: "submit" }, "Compare")),
      diffHost),
  );

  const cache = new Map<string, Promise<Bundle>>();
  const bundle = (id: string) => {
    if (!cache.has(id)) cache.set(id, loadVersion(name, id));
    return cache.get(id) as Promise<Bundle>;
  };
  /** What moving changes: the files added, removed and changed between the two versions. */
  async function changes(a: string, b: string): Promise<string[]> {
    const [x, y] = await Promise.all([bundle(a), bundle(b)]);
    const paths = [...new Set([...Object.keys(x.files), ...Object.keys(y.files)])].sort();
    return paths.flatMap((p) =>
      !(p in x.files) ? [`+ ${p} (added)`] : !(p in y.files) ? [`- ${p} (removed)`] : x.files[p] !== y.files[p] ? [`~ ${p} (changed)`] : [],
    );
  }

  async function proposeMove(tag: string, version: string): Promise<void> {
    const old = detail.tags[tag];
    if (old === version) return say(`${tag} is already at ${short(version)}`);
    let list: string[] = [];
    try {
      list = old ? await changes(old, version) : [];
    } catch (e) {
      confirmBox.replaceChildren(errorBlock(e));
      return;
    }
    const yes = h("button", { type: "button", class: "primary" }, `Move ${tag}`);
    const no = h("button", { type: "button" }, "Keep it");
    confirmBox.replaceChildren(
      h("div", { class: "confirm", role: "alertdialog", "aria-labelledby": "confirm-title" },
        h("p", { id: "confirm-title" }, h("strong", {}, `Move ${tag}: `), old ? `${short(old)} → ${short(version)}` : `(new tag) → ${short(version)}`),
        tag === "latest" ? h("p", {}, "Invocations without a tag or version run the new target from now on; warm executors of the old one drain.") : null,
        old ? h("ul", { class: "changes" }, ...(list.length ? list.map((c) => h("li", {}, c)) : [h("li", {}, "no file differs")])) : null,
        yes, no),
    );
    yes.focus();
    no.addEventListener("click", () => confirmBox.replaceChildren());
    yes.addEventListener("click", async () => {
      try {
        const after = await api<{ tags: Record<string, string> }>("PUT", `/v1/scripts/${enc(name)}/tags/${enc(tag)}`, { body: { version } });
        say(`${tag} → ${short(after.tags[tag] ?? version)}`, "ok");
        go(location.hash);
      } catch (e) {
        confirmBox.replaceChildren(errorBlock(e));
        fail(e);
      }
    });
  }

  let diffEditor: M.editor.IStandaloneDiffEditor | null = null;
  const models: M.editor.ITextModel[] = [];
  async function diff(): Promise<void> {
    try {
      const [m, a, b] = await Promise.all([loadMonaco(), bundle(from.value), bundle(to.value)]);
      const paths = [...new Set([...Object.keys(a.files), ...Object.keys(b.files)])].sort();
      if (!paths.includes(fileSel.value)) {
        fileSel.replaceChildren(...paths.map((p) => h("option", { value: p, selected: p === (b.entry || MANIFEST) }, p)));
      }
      const path = fileSel.value || paths[0];
      for (const x of models.splice(0)) x.dispose();
      const lang = path === MANIFEST ? "json" : undefined;
      const left = m.monaco.editor.createModel(a.files[path] ?? "", lang, m.monaco.Uri.parse(`diff:///a/${path}`));
      const right = m.monaco.editor.createModel(b.files[path] ?? "", lang, m.monaco.Uri.parse(`diff:///b/${path}`));
      models.push(left, right);
      if (!diffEditor) {
        diffHost.replaceChildren();
        diffEditor = m.monaco.editor.createDiffEditor(diffHost, { automaticLayout: true, readOnly: true, originalEditable: false, renderSideBySide: true, minimap: { enabled: false } });
      }
      diffEditor.setModel({ original: left, modified: right });
      diffHost.dataset.ready = path;
    } catch (e) {
      diffHost.replaceChildren(fail(e));
    }
  }
  fileSel.addEventListener("change", () => void diff());
  if (versions.length > 1) void diff();
  else diffHost.replaceChildren(h("p", { class: "muted" }, "Only one version so far: register another to compare."));
  return () => {
    diffEditor?.dispose();
    for (const x of models) x.dispose();
  };
}
