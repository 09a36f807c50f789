/**
 * The TUF trusted root a device gets at enrollment: fetched from the server the device just enrolled
 * with, over the same TLS trust (the pinned server CA), and stored next to its identity. From then on the
 * TUF client workflow only follows signed root rotations from it (TUF 1.0 5.3), whatever a mirror serves.
 */
import path from "node:path";
import { fail } from "../errors/index.js";
import { parseEnvelope } from "../updates/index.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { getBounded } from "./enroll-http.js";

const MAX_ROOT_BYTES = 512 * 1024;

/** Where `agent enroll --updates-repo NAME` stores the repository's trusted root. */
export function trustedRootPath(outDir: string, repo: string): string {
  return path.join(outDir, "tuf", repo, "root.json");
}

/** Fetches version 1 of the repository's root from the enrollment server and checks it is root metadata. */
export async function fetchTrustedRoot(opts: {
  server: string;
  ca?: string | Buffer;
  repo: string;
}): Promise<Buffer> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(opts.repo)) {
    fail("FR_VALIDATION", `"${opts.repo}" is not a repository name (letters, digits, . _ -)`);
  }
  const url = new URL(`/v1/updates/${opts.repo}/metadata/1.root.json`, opts.server);
  const { status, body } = await getBounded(url, opts.ca, MAX_ROOT_BYTES, "the root metadata");
  if (status !== 200)
    throw new Error(`${url.href}: the server answered ${status}; is the repository name right?`);
  parseEnvelope(body, "root"); // refuse anything that is not root metadata before trusting it
  return body;
}

/** Stores a fetched root atomically where `agent update --root` expects it; returns the path. */
export async function storeTrustedRoot(outDir: string, repo: string, body: Buffer): Promise<string> {
  const file = trustedRootPath(outDir, repo);
  await writeFileAtomic(file, body);
  return file;
}
