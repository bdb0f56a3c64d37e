// Editor: the script's files in a tree, Monaco with each file's language, diagnostics as you
// type (the daemon's `POST /v1/check`, debounced; the Python language server over the
// console's WebSocket), Format (`POST /v1/format`), the manifest validated against its schema,
// and Register with its prepare followed live.
import { api, ApiError, enc } from "../api";
import { h, field } from "../dom";
import { fail, say, errorBlock } from "../status";
import { loadMonaco, languageOf, type Monaco } from "../monaco-loader";
import { caps } from "../caps";
import { LspClient, attachToMonaco } from "../lsp";
import { MANIFEST, fromTemplate, loadVersion, registration, type Bundle } from "./bundle";
import { loadDraft, dropDraft } from "./draft";
import { register } from "./register";
import type * as M from "monaco-editor";

const CHECK_DEBOUNCE_MS = 400;

interface Diagnostic {
  path: string;
  line: number;
  column: number;
  end_line?: number;
  end_column?: number;
  severity: "error" | "warning" | "info";
  message: string;
  source: string;
}

export async function editorView(root: HTMLElement, args: string[], query: URLSearchParams): Promise<() => void> {
  const name = args[0];
  root.append(h("h2", { tabindex: "-1" }, name ? `Editor — ${name}` : "Editor"));
  if (!name) {
    root.append(h("p", {}, "Pick a script in ", h("a", { href: "#/scripts" }, "Scripts"), ", or create one there."));
    return () => undefined;
  }
  const draft = query.get("draft") ? loadDraft(name) : null;
  const bundle: Bundle = draft ? fromTemplate(draft) : await loadVersion(name, query.get("version") ?? undefined);

  const meta = h("p", { class: "muted" });
  const describe = () => (meta.textContent = `runtime ${bundle.runtime}, entry ${bundle.entry}${bundle.version ? `, version ${bundle.version.slice(0, 19)}…` : " (not registered yet)"}`);
  describe();
  const tree = h("ul", { class: "tree", "aria-label": "Files" });
  const host = h("div", { class: "monaco-host", "aria-label": "Code editor" }, h("p", { class: "muted" }, "Loading the editor…"));
  const notes = h("div", { class: "notes", "aria-live": "polite" });
  const lspNote = h("p", { class: "muted lsp", "aria-live": "polite" });
  const problems = h("ul", { class: "problems", "aria-label": "Diagnostics" });
  const panel = h("section", { class: "register-panel", "aria-live": "polite" });
  const formatButton = h("button", { type: "button", disabled: true }, "Format");
  const registerButton = h("button", { type: "button", class: "primary" }, "Register");
  const newFile = h("input", { type: "text", placeholder: "path/of/new-file.py", autocomplete: "off" });
  root.append(
    meta,
    h(
      "div",
      { class: "editor-layout" },
      h("aside", {}, h("h3", {}, "Files"), tree, h("form", { class: "inline", onsubmit: (e: Event) => { e.preventDefault(); addFile(); } }, field("New file", newFile), h("button", { type: "submit" }, "Add"))),
      h("div", { class: "editor-main" }, h("div", { class: "toolbar" }, formatButton, registerButton), host, lspNote, notes, h("h3", {}, "Diagnostics"), problems),
    ),
    panel,
  );

  let m: Monaco;
  try {
    m = await loadMonaco();
  } catch (e) {
    host.replaceChildren(fail(e));
    return () => undefined;
  }
  const monaco = m.monaco;
  const c = await caps();
  if (c.manifestSchema) m.useManifestSchema(c.manifestSchema);
  host.replaceChildren();
  const uri = (p: string) => monaco.Uri.parse(`file:///script/${p}`);
  const models = new Map<string, M.editor.ITextModel>();
  const disposables: M.IDisposable[] = [];
  const editor = monaco.editor.create(host, { automaticLayout: true, minimap: { enabled: false }, fontSize: 14, ariaLabel: "Code editor", theme: "vs" });
  disposables.push(editor);
  let current = "";

  function modelFor(path: string): M.editor.ITextModel {
    let model = models.get(path);
    if (!model) {
      monaco.editor.getModel(uri(path))?.dispose();
      model = monaco.editor.createModel(bundle.files[path] ?? "", path === MANIFEST ? "json" : languageOf(m, path), uri(path));
      models.set(path, model);
      disposables.push(model.onDidChangeContent(() => {
        bundle.files[path] = model!.getValue();
        scheduleCheck();
        lsp?.change(model!.uri.toString(), model!.getValue());
      }));
      disposables.push(model);
    }
    return model;
  }

  function show(path: string): void {
    current = path;
    editor.setModel(modelFor(path));
    renderTree();
    formatButton.disabled = !c.format || path === MANIFEST;
  }

  function renderTree(): void {
    const paths = Object.keys(bundle.files).sort((a, b) => (a === MANIFEST ? -1 : b === MANIFEST ? 1 : a.localeCompare(b)));
    tree.replaceChildren(
      ...paths.map((p) => {
        const errors = monaco.editor.getModelMarkers({ resource: uri(p) }).filter((x) => x.severity === monaco.MarkerSeverity.Error).length;
        return h("li", {}, h("button", { type: "button", class: "file", "aria-current": p === current ? "true" : undefined, onclick: () => { show(p); editor.focus(); } }, p === MANIFEST ? `${p} (manifest)` : p, errors ? h("span", { class: "badge error", "aria-label": `${errors} errors` }, String(errors)) : null));
      }),
    );
  }

  function addFile(): void {
    const p = newFile.value.trim().replace(/^\/+/, "");
    if (!p || p.split("/").some((s) => s === "" || s === "." || s === "..")) return say("a file path is relative, without . or .. segments", "error");
    if (!(p in bundle.files)) bundle.files[p] = "";
    newFile.value = "";
    show(p);
  }

  // Diagnostics from the daemon's checkers: the newest answer wins, failures are said once.
  let timer = 0;
  let asked = 0;
  function scheduleCheck(): void {
    clearTimeout(timer);
    timer = window.setTimeout(() => void check(), CHECK_DEBOUNCE_MS);
  }
  async function check(): Promise<void> {
    if (!c.check) return;
    const mine = ++asked;
    const files: Record<string, string> = {};
    for (const [p, t] of Object.entries(bundle.files)) if (p !== MANIFEST) files[p] = t;
    try {
      const answer = await api<{ diagnostics: Diagnostic[]; checkers: { name: string; ran: boolean; reason?: string }[] }>("POST", "/v1/check", { body: { runtime: bundle.runtime, files, path: current === MANIFEST ? undefined : current }, timeout: 20_000 });
      if (mine !== asked) return;
      showDiagnostics(answer.diagnostics);
      const skipped = answer.checkers.filter((k) => !k.ran);
      notes.replaceChildren(
        h("p", { class: "muted checkers" }, `checked by ${answer.checkers.filter((k) => k.ran).map((k) => k.name).join(", ") || "nothing"}`, skipped.length ? ` (not run: ${skipped.map((k) => `${k.name}${k.reason ? ` — ${k.reason}` : ""}`).join("; ")})` : ""),
      );
    } catch (e) {
      if (mine === asked) notes.replaceChildren(h("p", { class: "note warn" }, "checker unavailable: "), errorBlock(e));
    }
  }
  // The last checker answer, shown with the manifest's schema problems (Monaco's JSON worker
  // marks those; they are listed here too, so the list is the one place to read every problem).
  let checked: Diagnostic[] = [];
  disposables.push(monaco.editor.onDidChangeMarkers((changed) => {
    if (changed.some((u) => u.toString() === uri(MANIFEST).toString())) renderProblems();
  }));
  function manifestProblems(): Diagnostic[] {
    const S = monaco.MarkerSeverity;
    return monaco.editor.getModelMarkers({ resource: uri(MANIFEST) }).map((x) => ({
      path: MANIFEST,
      line: x.startLineNumber,
      column: x.startColumn,
      severity: x.severity === S.Error ? "error" : x.severity === S.Warning ? "warning" : "info",
      message: x.message,
      source: "schema",
    }));
  }
  function renderProblems(): void {
    const list = [...manifestProblems(), ...checked];
    problems.replaceChildren(
      ...list.map((d) => h("li", { class: d.severity, "data-line": String(d.line) }, h("button", { type: "button", class: "link", onclick: () => { show(d.path); editor.revealLineInCenter(d.line); editor.setPosition({ lineNumber: d.line, column: Math.max(1, d.column) }); editor.focus(); } }, `${d.path}:${d.line}:${d.column}`), ` ${d.severity}: ${d.message} (${d.source})`)),
    );
    if (!list.length) problems.append(h("li", { class: "muted" }, "no problems"));
    renderTree();
  }
  function showDiagnostics(list: Diagnostic[]): void {
    const S = monaco.MarkerSeverity;
    const byPath = new Map<string, Diagnostic[]>();
    for (const d of list) byPath.set(d.path, [...(byPath.get(d.path) ?? []), d]);
    for (const p of Object.keys(bundle.files)) {
      if (p === MANIFEST) continue;
      monaco.editor.setModelMarkers(modelFor(p), "runwarm-check", (byPath.get(p) ?? []).map((d) => ({
        startLineNumber: d.line,
        startColumn: Math.max(1, d.column),
        endLineNumber: d.end_line ?? d.line,
        endColumn: d.end_column ?? Math.max(1, d.column) + 1,
        severity: d.severity === "error" ? S.Error : d.severity === "warning" ? S.Warning : S.Info,
        message: d.message,
        source: d.source,
      })));
    }
    checked = list;
    renderProblems();
  }

  formatButton.addEventListener("click", async () => {
    const model = editor.getModel();
    if (!model) return;
    try {
      const answer = await api<{ content: string; changed: boolean; formatter: string }>("POST", "/v1/format", { body: { runtime: bundle.runtime, path: current, content: model.getValue() }, timeout: 20_000 });
      if (answer.changed) model.pushEditOperations([], [{ range: model.getFullModelRange(), text: answer.content }], () => null);
      say(answer.changed ? `formatted with ${answer.formatter}` : `already formatted (${answer.formatter})`, "ok");
    } catch (e) {
      fail(e);
      notes.replaceChildren(errorBlock(e));
    }
  });

  registerButton.addEventListener("click", async () => {
    let body;
    try {
      body = registration(name, bundle);
    } catch (e) {
      return void panel.replaceChildren(errorBlock(new ApiError(0, "manifest", `${MANIFEST} is not JSON: ${e}`, "fix the manifest; its problems are marked in the editor")));
    }
    registerButton.disabled = true;
    try {
      const version = await register(name, body, panel);
      if (version) {
        dropDraft(name);
        bundle.version = version;
        describe();
        panel.append(h("p", {}, h("a", { href: `#/run/${enc(name)}` }, "Run it"), " · ", h("a", { href: `#/versions/${enc(name)}` }, "Versions")));
      }
    } catch (e) {
      panel.append(errorBlock(e));
      fail(e);
    } finally {
      registerButton.disabled = false;
    }
  });

  // Python: completions and diagnostics from the language server the console forwards, when
  // its /features.json lists one; otherwise a note says so.
  let lsp: LspClient | null = null;
  const pyFiles = Object.keys(bundle.files).filter((p) => p.endsWith(".py"));
  if (!c.check) {
    notes.replaceChildren(h("p", { class: "note warn" }, "checker unavailable: this daemon has no POST /v1/check, so only the editor's own checks run (TypeScript, JSON); Format needs POST /v1/format"));
  }
  if (pyFiles.length && c.lsp.includes("python")) {
    LspClient.connect("/lsp/python", "file:///script")
      .then((client) => {
        lsp = client;
        disposables.push(attachToMonaco(m, client, "python"));
        for (const p of pyFiles) client.open(uri(p).toString(), "python", bundle.files[p] ?? "");
        lspNote.textContent = "Python language server connected";
      })
      .catch((e) => {
        lspNote.textContent = `Python language server unavailable: ${e.message}`;
        lspNote.className = "note warn lsp";
      });
  } else if (pyFiles.length) {
    lspNote.textContent = "Python language server unavailable: this console forwards none, so completions are Monaco's own";
    lspNote.className = "note warn lsp";
  }

  show(bundle.entry in bundle.files ? bundle.entry : Object.keys(bundle.files)[0] ?? MANIFEST);
  scheduleCheck();
  root.dataset.ready = "1";
  return () => {
    clearTimeout(timer);
    asked++;
    lsp?.close();
    for (const d of disposables.reverse()) d.dispose();
  };
}
