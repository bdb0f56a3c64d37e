// Loads the editor bundle (monaco.js and monaco.css) the first time a view needs it. The
// import is by URL, so esbuild keeps it out of app.js; the type comes from the source.
import type * as MonacoModule from "./monaco";

export type Monaco = typeof MonacoModule;

let loading: Promise<Monaco> | null = null;

export function loadMonaco(): Promise<Monaco> {
  if (!loading) {
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = "/monaco.css";
    document.head.appendChild(css);
    const url = "/monaco.js";
    loading = (import(/* @vite-ignore */ url) as Promise<Monaco>).catch((e) => {
      loading = null;
      throw new Error(`the editor could not be loaded: ${e}`);
    });
  }
  return loading;
}

/** The language Monaco should use for a path, by its extension. */
export function languageOf(m: Monaco, path: string): string {
  const ext = path.includes(".") ? `.${path.split(".").pop()}` : "";
  const lang = m.monaco.languages.getLanguages().find((l) => l.extensions?.includes(ext) || l.filenames?.includes(path));
  return lang?.id ?? "plaintext";
}
