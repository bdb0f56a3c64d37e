// A form from a JSON Schema (the manifest's `params`): one control per property of an object
// schema — text, number, checkbox, a select for enums, JSON text for arrays, objects and
// anything else — with required marks, defaults, bounds and descriptions; and a raw JSON
// editor as the fallback for schemas the form cannot express.
import { h, field } from "./dom";

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  minLength?: number;
  pattern?: string;
  title?: string;
};

export interface SchemaForm {
  element: HTMLElement;
  /** The payload, or a message saying which field is wrong. */
  value(): { ok: true; payload: unknown } | { ok: false; message: string; control?: HTMLElement };
}

function typeOf(s: Schema): string {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  if (s.enum) return "enum";
  return t ?? "any";
}

export function schemaForm(schema: unknown, initial: Record<string, unknown> = {}): SchemaForm {
  const s = (schema ?? {}) as Schema;
  const raw = h("textarea", { rows: 8, spellcheck: false, class: "code" });
  const rawField = field("Payload (JSON)", raw, "any JSON value; used as is");
  const props = typeOf(s) === "object" && s.properties ? s.properties : null;
  if (!props) {
    raw.value = JSON.stringify(initial ?? {}, null, 2);
    return { element: h("div", { class: "schema-form" }, rawField), value: () => parseRaw(raw) };
  }
  const required = new Set(s.required ?? []);
  const readers: [string, () => { ok: true; v: unknown } | { ok: false; message: string; control: HTMLElement }][] = [];
  const fields: HTMLElement[] = [];
  for (const [name, p] of Object.entries(props)) {
    const t = typeOf(p);
    const start = initial[name] ?? p.default;
    const label = `${p.title ?? name}${required.has(name) ? " *" : ""}`;
    const hint = [p.description, t !== "enum" && t !== "any" ? t : "", p.minimum !== undefined ? `≥ ${p.minimum}` : "", p.maximum !== undefined ? `≤ ${p.maximum}` : "", p.maxLength !== undefined ? `at most ${p.maxLength} characters` : ""].filter(Boolean).join("; ");
    let control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    if (t === "enum") {
      control = h("select", { name }, required.has(name) ? null : h("option", { value: "" }, "(none)"), ...(p.enum ?? []).map((v, i) => h("option", { value: String(i), selected: JSON.stringify(v) === JSON.stringify(start) }, JSON.stringify(v))));
      const c = control;
      readers.push([name, () => (c.value === "" ? { ok: true, v: undefined } : { ok: true, v: p.enum?.[Number(c.value)] })]);
    } else if (t === "boolean") {
      control = h("input", { type: "checkbox", name, checked: start === true });
      const c = control as HTMLInputElement;
      readers.push([name, () => ({ ok: true, v: c.checked })]);
    } else if (t === "integer" || t === "number") {
      control = h("input", { type: "number", name, step: t === "integer" ? "1" : "any", min: p.minimum, max: p.maximum, value: start !== undefined ? String(start) : undefined, required: required.has(name) });
      const c = control as HTMLInputElement;
      readers.push([name, () => {
        if (c.value === "") return { ok: true, v: undefined };
        if (!c.checkValidity()) return { ok: false, message: `${name}: ${c.validationMessage}`, control: c };
        return { ok: true, v: Number(c.value) };
      }]);
    } else if (t === "string") {
      control = h("input", { type: "text", name, value: start !== undefined ? String(start) : undefined, required: required.has(name), maxlength: p.maxLength, minlength: p.minLength, pattern: p.pattern, autocomplete: "off" });
      const c = control as HTMLInputElement;
      readers.push([name, () => {
        if (c.value === "" && !required.has(name)) return { ok: true, v: undefined };
        if (!c.checkValidity()) return { ok: false, message: `${name}: ${c.validationMessage}`, control: c };
        return { ok: true, v: c.value };
      }]);
    } else {
      control = h("textarea", { name, rows: 3, spellcheck: false, class: "code" });
      control.value = start !== undefined ? JSON.stringify(start, null, 2) : "";
      const c = control as HTMLTextAreaElement;
      readers.push([name, () => {
        if (c.value.trim() === "") return { ok: true, v: undefined };
        try {
          return { ok: true, v: JSON.parse(c.value) };
        } catch (e) {
          return { ok: false, message: `${name} is not JSON: ${e}`, control: c };
        }
      }]);
    }
    if (required.has(name)) control.setAttribute("aria-required", "true");
    fields.push(field(label, control, hint || undefined));
  }
  const useRaw = h("input", { type: "checkbox" });
  const formPart = h("div", { class: "schema-fields" }, ...fields);
  rawField.hidden = true;
  const collect = (): { ok: true; payload: unknown } | { ok: false; message: string; control?: HTMLElement } => {
    const payload: Record<string, unknown> = {};
    for (const [name, read] of readers) {
      const r = read();
      if (!r.ok) return r;
      if (r.v !== undefined) payload[name] = r.v;
      else if (required.has(name)) return { ok: false, message: `${name} is required` };
    }
    return { ok: true, payload };
  };
  useRaw.addEventListener("change", () => {
    if (useRaw.checked) {
      const r = collect();
      raw.value = JSON.stringify(r.ok ? r.payload : {}, null, 2);
    }
    formPart.hidden = useRaw.checked;
    rawField.hidden = !useRaw.checked;
  });
  return {
    element: h("div", { class: "schema-form" }, formPart, h("label", { class: "check" }, useRaw, " Edit as raw JSON"), rawField),
    value: () => (useRaw.checked ? parseRaw(raw) : collect()),
  };
}

function parseRaw(raw: HTMLTextAreaElement): { ok: true; payload: unknown } | { ok: false; message: string; control: HTMLElement } {
  try {
    return { ok: true, payload: JSON.parse(raw.value || "{}") };
  } catch (e) {
    return { ok: false, message: `the payload is not JSON: ${e}`, control: raw };
  }
}
