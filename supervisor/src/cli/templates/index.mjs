// Handler mode: runwarm imports this ES module once per warm executor and calls handler() per
// invocation. `event` is the JSON payload (checked against [params] in runwarm.toml first);
// the returned value (or what the promise resolves to) is the result, as JSON. A thrown error
// fails the invocation (E002) with its name, message and stack. console.log goes to the
// execution's stdout. Dependencies: package.json (+ package-lock.json), installed once at
// registration.

export async function handler(event, context) {
  const name = event.name ?? "world";
  context.log("greeting", "info", { who: name }); // a structured log record of this execution
  return { greeting: `hello ${name}` };
}
