// Handler mode: runwarm transpiles this file once at registration (esbuild: types are not
// checked) and calls handler() per invocation in a warm Node executor. `event` is the JSON
// payload (checked against [params] in runwarm.toml first); what the promise resolves to is
// the result, as JSON. A thrown error fails the invocation (E002) with a stack naming .ts lines.

export interface GreetEvent {
  name?: string;
}

/** The part of runwarm's handler context used here (executors/node/README.md has it all). */
export interface Context {
  executionId: string;
  remainingMs(): number;
  log(message: string, level?: "debug" | "info" | "warn" | "error", fields?: Record<string, unknown>): void;
}

export async function handler(event: GreetEvent, context: Context): Promise<{ greeting: string }> {
  const name = event.name ?? "world";
  context.log("greeting", "info", { who: name }); // a structured log record of this execution
  return { greeting: `hello ${name}` };
}
