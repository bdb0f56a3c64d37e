export async function handler(event, context) {
  const name = event.name ?? "world";
  return { greeting: `hello ${name}`, runtime: `node ${process.versions.node}` };
}
