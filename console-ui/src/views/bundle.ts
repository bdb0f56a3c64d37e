// A script's files as the editor holds them: read from a registered version, or a template.
import { api, enc } from "../api";
import type { Template } from "../templates";

export const MANIFEST = "runwarm.json";

export interface Bundle {
  runtime: string;
  entry: string;
  /** Path to contents; the manifest is the file `runwarm.json` (JSON text). */
  files: Record<string, string>;
  version?: string;
}

interface VersionDetail {
  id: string;
  manifest: Record<string, unknown>;
  files: { path: string; size: number }[];
}

export function fromTemplate(t: Template): Bundle {
  return {
    runtime: String(t.manifest.runtime),
    entry: t.entry,
    files: { ...t.files, [MANIFEST]: JSON.stringify(t.manifest, null, 2) + "\n" },
  };
}

/** The version (id, prefix or label; the script's latest when empty), with every file's text. */
export async function loadVersion(name: string, version?: string): Promise<Bundle> {
  const id = version || (await api<{ latest: string }>("GET", `/v1/scripts/${enc(name)}`)).latest;
  const detail = await api<VersionDetail>("GET", `/v1/scripts/${enc(name)}/versions/${enc(id)}`);
  const files: Record<string, string> = { [MANIFEST]: JSON.stringify(detail.manifest, null, 2) + "\n" };
  await Promise.all(
    detail.files.map(async (f) => {
      const path = f.path.split("/").map(enc).join("/");
      const r = await fetch(`/api/v1/scripts/${enc(name)}/versions/${enc(detail.id)}/files/${path}`);
      files[f.path] = r.ok ? await r.text() : `# could not read ${f.path}: ${r.status}`;
    }),
  );
  return {
    runtime: String(detail.manifest.runtime ?? ""),
    entry: String(detail.manifest.entry ?? ""),
    files,
    version: detail.id,
  };
}

/** The registration body: the manifest parsed from its file, every other file as text. */
export function registration(name: string, b: Bundle): { name: string; manifest: unknown; files: Record<string, string> } {
  const manifest = JSON.parse(b.files[MANIFEST] ?? "{}");
  const files: Record<string, string> = {};
  for (const [p, text] of Object.entries(b.files)) if (p !== MANIFEST) files[p] = text;
  return { name, manifest, files };
}
