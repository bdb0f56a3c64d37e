// ANSI SGR colours (30–37, 90–97, 40–47, 1, 0) into spans with classes, so output keeps its
// colours; every other escape sequence is dropped. Text is set as text, never as HTML.

const SGR = /\x1b\[([0-9;]*)m/g;
const OTHER = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]/g;

export function ansiSpans(text: string, state: { classes: string[] } = { classes: [] }): Node[] {
  const out: Node[] = [];
  let last = 0;
  const emit = (s: string) => {
    if (!s) return;
    const clean = s.replace(OTHER, "");
    if (!state.classes.length) out.push(document.createTextNode(clean));
    else {
      const span = document.createElement("span");
      span.className = state.classes.join(" ");
      span.textContent = clean;
      out.push(span);
    }
  };
  for (const m of text.matchAll(SGR)) {
    emit(text.slice(last, m.index));
    last = (m.index ?? 0) + m[0].length;
    const codes = m[1] === "" ? [0] : m[1].split(";").map(Number);
    for (const c of codes) {
      if (c === 0) state.classes = [];
      else if (c === 1) state.classes = [...state.classes.filter((x) => x !== "ansi-bold"), "ansi-bold"];
      else if ((c >= 30 && c <= 37) || (c >= 90 && c <= 97)) state.classes = [...state.classes.filter((x) => !x.startsWith("ansi-fg")), `ansi-fg${c}`];
      else if (c >= 40 && c <= 47) state.classes = [...state.classes.filter((x) => !x.startsWith("ansi-bg")), `ansi-bg${c}`];
      else if (c === 39) state.classes = state.classes.filter((x) => !x.startsWith("ansi-fg"));
      else if (c === 49) state.classes = state.classes.filter((x) => !x.startsWith("ansi-bg"));
    }
  }
  emit(text.slice(last));
  return out;
}
