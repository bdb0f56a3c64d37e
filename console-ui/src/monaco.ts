// The editor, as its own entry (`monaco.js`): app.js imports it only when a view needs Monaco,
// and adds `monaco.css` then. Workers are module workers from the console's own origin, so the
// page's Content-Security-Policy needs neither blob: nor eval.
import * as monaco from "monaco-editor";

type Env = { getWorker(workerId: string, label: string): Worker };

const workerFile: Record<string, string> = {
  json: "json",
  typescript: "ts",
  javascript: "ts",
};

(self as unknown as { MonacoEnvironment: Env }).MonacoEnvironment = {
  getWorker(_workerId, label) {
    const name = workerFile[label] ?? "editor";
    return new Worker(`/workers/${name}.js`, { type: "module", name: `monaco-${label}` });
  },
};

/** The manifest's JSON Schema (from the daemon's OpenAPI document) for `runwarm.json`. */
export function useManifestSchema(schema: unknown): void {
  monaco.json.jsonDefaults.setDiagnosticsOptions({
    validate: true,
    allowComments: false,
    enableSchemaRequest: false,
    schemas: [
      { uri: "runwarm://schema/manifest.json", fileMatch: ["**/runwarm.json", "runwarm.json"], schema },
    ],
  });
}

export { monaco };
