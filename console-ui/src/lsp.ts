// A small Language Server Protocol client over the console's WebSocket (`/lsp/python`): one
// JSON-RPC message per text frame. It speaks only what the editor uses — initialize,
// didOpen/didChange (full text), completion, publishDiagnostics — which is why it is written
// here instead of taking monaco-languageclient, whose VS Code service layer would triple the
// editor bundle for the same four messages.
import type { Monaco } from "./monaco-loader";
import type * as M from "monaco-editor";

type Handler = (params: unknown) => void;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: number;
}

export class LspClient {
  private next = 1;
  private pending = new Map<number, Pending>();
  private handlers = new Map<string, Handler>();
  private versions = new Map<string, number>();
  closed = false;

  private constructor(private ws: WebSocket) {
    ws.onmessage = (e) => this.receive(String(e.data));
    ws.onclose = () => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new Error("the language server went away"));
      this.pending.clear();
    };
  }

  /** Opens the socket and runs `initialize`; rejects if either fails within `ms`. */
  static async connect(path: string, rootUri: string, ms = 10_000): Promise<LspClient> {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer from the language server")), ms);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error("the language server's socket did not open"));
      };
    });
    const client = new LspClient(ws);
    await client.request(
      "initialize",
      {
        processId: null,
        rootUri,
        capabilities: {
          textDocument: {
            synchronization: { didSave: false, dynamicRegistration: false },
            completion: { completionItem: { snippetSupport: false, documentationFormat: ["plaintext", "markdown"] } },
            publishDiagnostics: { relatedInformation: false },
          },
        },
        workspaceFolders: [{ uri: rootUri, name: "script" }],
      },
      ms * 3,
    );
    client.notify("initialized", {});
    return client;
  }

  on(method: string, handler: Handler): void {
    this.handlers.set(method, handler);
  }

  request(method: string, params: unknown, ms = 10_000): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer in ${ms / 1000} s`));
      }, ms);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ jsonrpc: "2.0", id, method, params });
    });
  }

  notify(method: string, params: unknown): void {
    this.send({ jsonrpc: "2.0", method, params });
  }

  open(uri: string, languageId: string, text: string): void {
    this.versions.set(uri, 1);
    this.notify("textDocument/didOpen", { textDocument: { uri, languageId, version: 1, text } });
  }

  change(uri: string, text: string): void {
    const version = (this.versions.get(uri) ?? 0) + 1;
    this.versions.set(uri, version);
    this.notify("textDocument/didChange", { textDocument: { uri, version }, contentChanges: [{ text }] });
  }

  close(): void {
    this.closed = true;
    this.ws.close();
  }

  private send(message: unknown): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private receive(text: string): void {
    let msg: { id?: number; method?: string; params?: unknown; result?: unknown; error?: { message: string } };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.method && msg.id !== undefined) {
      // A request from the server (configuration, registerCapability...): answer null.
      this.send({ jsonrpc: "2.0", id: msg.id, result: null });
      return;
    }
    if (msg.method) {
      this.handlers.get(msg.method)?.(msg.params);
      return;
    }
    const p = msg.id !== undefined ? this.pending.get(msg.id) : undefined;
    if (!p || msg.id === undefined) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new Error(msg.error.message));
    else p.resolve(msg.result);
  }
}

interface LspItem {
  label: string;
  kind?: number;
  detail?: string;
  documentation?: string | { value: string };
  insertText?: string;
  textEdit?: { newText: string };
  sortText?: string;
}

interface LspDiagnostic {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  severity?: number;
  message: string;
  source?: string;
}

/** Wires the client into Monaco: completions for `language`, diagnostics as markers. */
export function attachToMonaco(m: Monaco, client: LspClient, language: string): M.IDisposable {
  const monaco = m.monaco;
  const K = monaco.languages.CompletionItemKind;
  // LSP CompletionItemKind (1-based) to Monaco's enum.
  const kinds = [K.Text, K.Text, K.Method, K.Function, K.Constructor, K.Field, K.Variable, K.Class, K.Interface, K.Module, K.Property, K.Unit, K.Value, K.Enum, K.Keyword, K.Snippet, K.Color, K.File, K.Reference, K.Folder, K.EnumMember, K.Constant, K.Struct, K.Event, K.Operator, K.TypeParameter];
  client.on("textDocument/publishDiagnostics", (params) => {
    const { uri, diagnostics } = params as { uri: string; diagnostics: LspDiagnostic[] };
    const model = monaco.editor.getModel(monaco.Uri.parse(uri));
    if (!model) return;
    const S = monaco.MarkerSeverity;
    monaco.editor.setModelMarkers(
      model,
      "language-server",
      diagnostics.map((d) => ({
        startLineNumber: d.range.start.line + 1,
        startColumn: d.range.start.character + 1,
        endLineNumber: d.range.end.line + 1,
        endColumn: d.range.end.character + 1,
        severity: d.severity === 1 ? S.Error : d.severity === 2 ? S.Warning : S.Info,
        message: d.message,
        source: d.source ?? "language server",
      })),
    );
  });
  return monaco.languages.registerCompletionItemProvider(language, {
    triggerCharacters: ["."],
    async provideCompletionItems(model, position) {
      if (client.closed) return { suggestions: [] };
      client.change(model.uri.toString(), model.getValue());
      const answer = (await client.request("textDocument/completion", {
        textDocument: { uri: model.uri.toString() },
        position: { line: position.lineNumber - 1, character: position.column - 1 },
      }).catch(() => null)) as { items?: LspItem[] } | LspItem[] | null;
      const items = Array.isArray(answer) ? answer : answer?.items ?? [];
      const word = model.getWordUntilPosition(position);
      const range = new monaco.Range(position.lineNumber, word.startColumn, position.lineNumber, word.endColumn);
      return {
        suggestions: items.map((i) => ({
          label: i.label,
          kind: kinds[i.kind ?? 1] ?? K.Text,
          detail: i.detail,
          documentation: typeof i.documentation === "string" ? i.documentation : i.documentation?.value,
          insertText: i.textEdit?.newText ?? i.insertText ?? i.label,
          sortText: i.sortText,
          range,
        })),
      };
    },
  });
}
