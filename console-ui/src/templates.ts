// A starting point per runtime for "New script": the entry file and a manifest. The manifest's
// `params` is a JSON Schema, which is what the Run view turns into a form.

export interface Template {
  entry: string;
  manifest: Record<string, unknown>;
  files: Record<string, string>;
}

const greetingParams = {
  type: "object",
  required: ["name"],
  properties: {
    name: { type: "string", maxLength: 100, default: "world", description: "Who to greet" },
    times: { type: "integer", minimum: 1, maximum: 5, default: 1 },
  },
  additionalProperties: false,
};

function t(runtime: string, entry: string, code: string, mode?: string): Template {
  const manifest: Record<string, unknown> = { runtime, entry, description: `A ${runtime} script`, params: greetingParams };
  if (mode) manifest.mode = mode;
  return { entry, manifest, files: { [entry]: code } };
}

export const templates: Record<string, () => Template> = {
  python3: () =>
    t(
      "python3",
      "main.py",
      `import sys\n\n\ndef handler(event, context):\n    name = event.get("name", "world")\n    for i in range(event.get("times", 1)):\n        print(f"hello {name} ({i + 1})")\n    print(f"\\x1b[33mgreeted {name}\\x1b[0m", file=sys.stderr)\n    context.log("greeted", name=name)\n    return {"greeting": f"hello {name}"}\n`,
    ),
  node: () =>
    t(
      "node",
      "index.mjs",
      `export async function handler(event, context) {\n  const name = event.name ?? "world";\n  for (let i = 0; i < (event.times ?? 1); i++) console.log(\`hello \${name} (\${i + 1})\`);\n  return { greeting: \`hello \${name}\` };\n}\n`,
    ),
  typescript: () =>
    t(
      "typescript",
      "main.ts",
      `interface Event { name?: string; times?: number }\n\nexport async function handler(event: Event): Promise<{ greeting: string }> {\n  const name = event.name ?? "world";\n  for (let i = 0; i < (event.times ?? 1); i++) console.log(\`hello \${name} (\${i + 1})\`);\n  return { greeting: \`hello \${name}\` };\n}\n`,
    ),
  bash: () =>
    t(
      "bash",
      "main.sh",
      `#!/usr/bin/env bash\nset -euo pipefail\nfor i in $(seq 1 "\${PARAM_TIMES:-1}"); do\n  echo "hello \${PARAM_NAME:-world} ($i)"\ndone\necho "{\\"greeting\\": \\"hello \${PARAM_NAME:-world}\\"}"\n`,
      "command",
    ),
};
