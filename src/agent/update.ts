import crypto from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Updater, type TargetFile } from "tuf-js";
import { fail, FleetError } from "../errors/index.js";
import { intoto, parseEnvelope, tufKeyFromText } from "../updates/index.js";
import { systemClock, type Clock } from "../util/clock.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { mkdirp } from "../util/index.js";

export interface UpdateClientOptions {
  /** The repository's base URL, e.g. https://fleet.example/v1/updates/firmware */
  repoUrl: string;
  /** The root metadata shipped at enrollment (a file path); copied into metadataDir on first use. */
  trustedRoot: string;
  /** Where verified metadata is kept between runs (rollback protection needs it to persist). */
  metadataDir: string;
  /** Upper bounds on downloaded metadata (endless-data protection); defaults suit most fleets. */
  maxMetadataBytes?: number;
  fetchTimeoutMs?: number;
  /** Layout owner keys (PEM or securesystemslib JSON texts): required when a target carries an in-toto layout. */
  layoutKeys?: string[];
  /** Checks the in-toto layout's expiry (TUF expiry is checked by tuf-js against the system time). */
  clock?: Clock;
}

export interface VerifiedTarget {
  name: string;
  length: number;
  sha256: string;
  custom: Record<string, unknown>;
  /** The verified bytes. */
  content: Buffer;
}

/**
 * Follows the TUF client workflow (spec 5.2–5.7: root rotation chain, timestamp, snapshot, targets,
 * delegation search; rollback, freeze, mix-and-match and endless-data checks) with tuf-js, a fresh Updater
 * per call, and returns a target's bytes only after its length and hashes verified.
 */
export async function fetchVerifiedTarget(opts: UpdateClientOptions, name: string): Promise<VerifiedTarget> {
  await seedRoot(opts);
  const base = opts.repoUrl.replace(/\/+$/, "");
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), "fleetroot-update-"));
  try {
    const max = opts.maxMetadataBytes ?? 16 * 1024 * 1024;
    const updater = new Updater({
      metadataDir: opts.metadataDir,
      metadataBaseUrl: `${base}/metadata/`,
      targetBaseUrl: `${base}/targets/`,
      targetDir: scratch,
      config: {
        rootMaxLength: Math.min(max, 512 * 1024),
        timestampMaxLength: 64 * 1024,
        snapshotMaxLength: max,
        targetsMaxLength: max,
        fetchTimeout: opts.fetchTimeoutMs ?? 30_000,
        fetchRetries: 0,
      },
    });
    let info: TargetFile | undefined;
    try {
      await updater.refresh();
      info = await updater.getTargetInfo(name);
    } catch (e) {
      throw missingMetadata(e, base) ?? verifyError(e, "refreshing the repository metadata");
    }
    if (!info) return fail("FR_UPDATES_VERIFY", `the repository lists no target ${JSON.stringify(name)}`);
    const file = path.join(scratch, "download");
    try {
      await updater.downloadTarget(info, file);
    } catch (e) {
      throw verifyError(e, `downloading ${name}`);
    }
    const content = await fs.readFile(file);
    return {
      name,
      length: content.length,
      sha256: crypto.createHash("sha256").update(content).digest("hex"),
      custom: (info.custom ?? {}) as Record<string, unknown>,
      content,
    };
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/**
 * When the target's custom metadata carries an in-toto layout and links (CNAB 301 style), verifies the
 * downloaded bytes as the final product against them.
 */
export async function checkIntoto(opts: UpdateClientOptions, t: VerifiedTarget): Promise<void> {
  const c = t.custom["in-toto"] as { layout?: unknown; links?: Record<string, unknown> } | undefined;
  if (!c) return;
  if (!opts.layoutKeys?.length) {
    fail(
      "FR_UPDATES_VERIFY",
      `${t.name} carries an in-toto layout: give the layout owner's key to verify it`,
    );
  }
  intoto.verifyFinalProduct({
    layout: c.layout as intoto.Metablock<intoto.Layout>,
    layoutKeys: opts.layoutKeys.map((k) => tufKeyFromText(k, { intoto: true })),
    links: Object.values(c.links ?? {}) as Array<intoto.Metablock<intoto.Link>>,
    finalProduct: { [path.basename(t.name)]: { sha256: t.sha256 } },
    now: (opts.clock ?? systemClock).now(),
  });
}

/** Downloads a verified target into `outDir` under its base name, atomically. Returns the file path. */
export async function updateTarget(opts: UpdateClientOptions, name: string, outDir: string): Promise<string> {
  const t = await fetchVerifiedTarget(opts, name);
  await checkIntoto(opts, t);
  const out = path.join(outDir, path.basename(name));
  await writeFileAtomic(out, t.content);
  return out;
}

async function seedRoot(opts: UpdateClientOptions): Promise<void> {
  const dest = path.join(opts.metadataDir, "root.json");
  try {
    await fs.access(dest);
    return;
  } catch {
    /* first run: seed it from the trusted root */
  }
  let text: Buffer;
  try {
    text = await fs.readFile(opts.trustedRoot);
  } catch {
    return fail("FR_UPDATES_VERIFY", `cannot read the trusted root ${opts.trustedRoot}`);
  }
  // Checked before any directory is made: a missing or malformed root leaves nothing behind.
  parseEnvelope(text, "root");
  await mkdirp(opts.metadataDir, 0o700);
  await writeFileAtomic(dest, text, 0o600);
}

/**
 * A 404 for the repository's metadata: a wrong repository name or server URL, or a repository that
 * publishes nothing yet (its first targets waits for an offline signature). tuf-js says only "Failed to
 * download".
 */
function missingMetadata(e: unknown, base: string): FleetError | undefined {
  // tuf-js does not export its error classes (nor set their names): its DownloadHTTPError is known by
  // its constructor and its statusCode.
  const err = e as { constructor?: { name?: unknown }; statusCode?: unknown } | undefined;
  if (err?.constructor?.name !== "DownloadHTTPError" || err.statusCode !== 404) return undefined;
  const repo = base.split("/").pop() ?? "REPO";
  return new FleetError(
    "FR_UPDATES_VERIFY",
    `${base} serves no timestamp metadata (404): check the repository name and the server URL; a repository ` +
      `whose targets wait for an offline signature publishes nothing until they are imported ` +
      `(\`fleetroot updates status ${repo}\` on the server side says so)`,
    { cause: e },
  );
}

function verifyError(e: unknown, during: string): FleetError {
  if (e instanceof FleetError) return e;
  const err = e as Error;
  return new FleetError("FR_UPDATES_VERIFY", `${during}: ${err.name}: ${err.message}`, { cause: e });
}
