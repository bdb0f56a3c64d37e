// The console's shell: a navigation bar and a hash router (`#/scripts`, `#/editor/NAME`, ...).
// Views are plain DOM modules; each renders into <main> and may return a cleanup that runs when
// the page moves on (closing event streams, timers and editors).
import "./app.css";
import { sayFlashed, fail } from "./status";
import { scriptsView } from "./views/scripts";
import { editorView } from "./views/editor";
import { versionsView } from "./views/versions";
import { runView } from "./views/run";
import { executionsView } from "./views/executions";
import { poolsView } from "./views/pools";

export type Cleanup = () => void;
export type View = (root: HTMLElement, args: string[], query: URLSearchParams) => Cleanup | void | Promise<Cleanup | void>;

const views: Record<string, View> = {
  scripts: scriptsView,
  editor: editorView,
  versions: versionsView,
  run: runView,
  executions: executionsView,
  pools: poolsView,
};

let cleanup: Cleanup | void = undefined;
let generation = 0;

async function route(): Promise<void> {
  const mine = ++generation;
  const hash = location.hash.replace(/^#\/?/, "") || "scripts";
  const [path, qs] = hash.split("?", 2);
  const [name = "scripts", ...args] = path.split("/").map(decodeURIComponent);
  const view = views[name] ?? scriptsView;
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a view's cleanup must not stop the next view */
    }
    cleanup = undefined;
  }
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const main = document.querySelector("main") as HTMLElement;
  main.replaceChildren();
  main.dataset.view = name;
  sayFlashed();
  try {
    const c = await view(main, args, new URLSearchParams(qs ?? ""));
    if (mine === generation) cleanup = c;
    else if (c) c();
  } catch (e) {
    main.appendChild(fail(e));
  }
  // Move focus to the view's heading for keyboard and screen-reader users.
  if (mine === generation) main.querySelector<HTMLElement>("h2")?.focus({ preventScroll: true });
}

window.addEventListener("hashchange", () => void route());
window.addEventListener("unhandledrejection", (e) => fail(e.reason));
void route().then(() => performance.mark("console-first-render"));
