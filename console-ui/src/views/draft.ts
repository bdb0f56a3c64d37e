// A script not registered yet (made from a template): kept for the tab's life in
// sessionStorage, so a reload of the editor does not lose it.
import type { Template } from "../templates";

const key = (name: string) => `runwarm-draft:${name}`;

export function saveDraft(name: string, t: Template): void {
  sessionStorage.setItem(key(name), JSON.stringify(t));
}

export function loadDraft(name: string): Template | null {
  try {
    const text = sessionStorage.getItem(key(name));
    return text ? (JSON.parse(text) as Template) : null;
  } catch {
    return null;
  }
}

export function dropDraft(name: string): void {
  sessionStorage.removeItem(key(name));
}
