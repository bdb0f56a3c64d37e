// What this daemon offers, read once from its OpenAPI document: whether `POST /v1/check` and
// `POST /v1/format` exist (an older daemon has neither, and the editor says so instead of
// failing on each keystroke), and the manifest's JSON Schema for the manifest editor; and from
// the console's own /features.json, which language servers it forwards.
import { api } from "./api";

export interface Caps {
  check: boolean;
  format: boolean;
  /** The manifest's schema, with the document's components so its `$ref`s resolve. */
  manifestSchema: unknown | null;
  /** Languages whose language server the console forwards at `/lsp/<language>`. */
  lsp: string[];
}

let asked: Promise<Caps> | null = null;

export function caps(): Promise<Caps> {
  if (!asked) {
    const features = fetch("/features.json")
      .then((r) => (r.ok ? r.json() : {}))
      .then((f: { lsp?: unknown }) => (Array.isArray(f.lsp) ? f.lsp.map(String) : []))
      .catch(() => [] as string[]);
    asked = api<{ paths?: Record<string, unknown>; components?: { schemas?: Record<string, unknown> } }>("GET", "/v1/openapi.json")
      .then(async (doc) => {
        const paths = doc.paths ?? {};
        const schemas = doc.components?.schemas ?? {};
        const manifest = schemas.Manifest as Record<string, unknown> | undefined;
        return {
          check: "/v1/check" in paths,
          format: "/v1/format" in paths,
          manifestSchema: manifest ? { ...manifest, components: doc.components } : null,
          lsp: await features,
        };
      })
      .catch(() => {
        asked = null;
        return { check: false, format: false, manifestSchema: null, lsp: [] };
      });
  }
  return asked;
}
