// The page's one status line (role=status, so screen readers hear it) and error rendering:
// every ApiError is shown with its code and hint, never swallowed.
import { ApiError } from "./api";
import { h } from "./dom";

export function say(text: string, kind: "" | "error" | "ok" = ""): void {
  const status = document.getElementById("status");
  if (!status) return;
  status.textContent = text;
  status.className = kind;
}

let flashed: [string, "" | "error" | "ok"] | null = null;

/** A message for the status line that survives the move to the next view (whose router
 * clears the line). */
export function flash(text: string, kind: "" | "error" | "ok" = ""): void {
  flashed = [text, kind];
}

/** The status line at a view's start: the flashed message, if any, or nothing. */
export function sayFlashed(): void {
  const [text, kind] = flashed ?? ["", ""];
  flashed = null;
  say(text, kind);
}

/** A block describing a failure: status and code, detail, hint, schema violations. */
export function errorBlock(e: unknown): HTMLElement {
  if (!(e instanceof ApiError)) return h("div", { class: "problem", role: "alert" }, String(e));
  const violations = (e.body as { violations?: { pointer?: string; message?: string }[] } | undefined)?.violations ?? [];
  return h(
    "div",
    { class: "problem", role: "alert" },
    h("strong", {}, e.message),
    e.hint ? h("p", { class: "hint" }, "hint: ", e.hint) : null,
    violations.length
      ? h("ul", {}, ...violations.map((v) => h("li", {}, h("code", {}, v.pointer || "/"), ` ${v.message ?? JSON.stringify(v)}`)))
      : null,
  );
}

/** Shows the failure in the status line (with its hint) and returns the same as a block. */
export function fail(e: unknown): HTMLElement {
  if (e instanceof ApiError) say(e.hint ? `${e.message} — hint: ${e.hint}` : e.message, "error");
  else say(String(e), "error");
  return errorBlock(e);
}
