// Builds the console page: TypeScript under src/ into ../supervisor/src/console/assets/dist,
// which is committed and embedded in `runwarm` (so `cargo build` needs no Node.js).
// tests/tests/e2e/console_bundle.rs runs `npm ci` and this script into a scratch directory and
// fails if the result differs from the committed files.
//
//   node build.mjs [OUTDIR]
//
// Entries keep plain names (the page names them; served `no-cache`); everything they load
// (split chunks, Monaco's CSS and font) carries a content hash (served `immutable`).
// Monaco is a second entry, `monaco.js`, that app.js imports only when a view needs the
// editor, so the first page load never pays for it. Its workers are entries of their own,
// module workers loaded from the console's origin (no blob:, no eval).
import * as esbuild from "esbuild";
import { rmSync, mkdirSync, copyFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] ?? join(here, "../supervisor/src/console/assets/dist"));
const monaco = join(here, "node_modules/monaco-editor/esm/vs");

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome120", "firefox120", "safari17"],
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  // Reproducible: no absolute paths or timestamps in the output.
  sourcemap: false,
  metafile: true,
};

// The page and Monaco, with shared chunks split out.
const page = await esbuild.build({
  ...common,
  entryPoints: { app: join(here, "src/main.ts"), monaco: join(here, "src/monaco.ts") },
  splitting: true,
  outdir,
  entryNames: "[name]",
  chunkNames: "chunks/[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  loader: { ".ttf": "file" },
});

// Monaco's workers: each one file, no shared chunks (a worker's imports are its own).
const workers = await esbuild.build({
  ...common,
  entryPoints: {
    "workers/editor": join(monaco, "editor/editor.worker.js"),
    "workers/json": join(monaco, "language/json/json.worker.js"),
    "workers/ts": join(monaco, "language/typescript/ts.worker.js"),
  },
  outdir,
  entryNames: "[dir]/[name]",
});

// A lazily imported chunk that imports CSS gets a copy of it beside it, which nothing loads:
// Monaco's CSS is all in monaco.css, which app.js links when it loads the editor.
for (const file of readdirSync(join(outdir, "chunks"))) {
  if (file.endsWith(".css")) {
    rmSync(join(outdir, "chunks", file));
    delete page.metafile.outputs[Object.keys(page.metafile.outputs).find((o) => o.endsWith(`chunks/${file}`))];
  }
}

for (const file of ["index.html", "favicon.svg"]) {
  copyFileSync(join(here, "static", file), join(outdir, file));
}

// A size report, so a bundle that grows shows in the build's output.
const sizes = {};
for (const meta of [page.metafile, workers.metafile]) {
  for (const [file, out] of Object.entries(meta.outputs)) sizes[file.replace(/.*\/dist\//, "")] = out.bytes;
}
const total = (prefix) =>
  Object.entries(sizes).filter(([f]) => f.startsWith(prefix)).reduce((n, [, b]) => n + b, 0);
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
console.log(
  `console-ui: app.js ${kib(sizes["app.js"] ?? 0)}, app.css ${kib(sizes["app.css"] ?? 0)}, ` +
    `monaco.js ${kib(sizes["monaco.js"] ?? 0)} + monaco.css ${kib(sizes["monaco.css"] ?? 0)}, ` +
    `chunks ${kib(total("chunks/"))}, workers ${kib(total("workers/"))} -> ${outdir}`,
);
