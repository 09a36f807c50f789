/**
 * Enclaves in a keystore: create (key, certificate from the identity CA, CA copies, governance, signed
 * permissions — built in a temporary directory and renamed into place), replace permissions, list.
 */
import fsSync from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { X509Certificate } from "node:crypto";
import {
  buildCertificate,
  certificateParts,
  derFrom,
  randomSerial,
  serialHex,
  toPem,
} from "../crypto/index.js";
import { fail } from "../errors/index.js";
import { defaultPolicyFor } from "./default-policy.js";
import { exists, existsSync, writeDirAtomicSync, writeFilesAtomic } from "./files.js";
import { newEnclaveKey } from "./enclave-key.js";
import type { Signer } from "../keys/index.js";
import { BACKDATE_MS, DAY, type CaHandle, type Ros2Keystore, seconds } from "./keystore.js";
import { ENCLAVES, PUBLIC, checkEnclaveName, enclaveDir, files } from "./layout.js";
import { type DdsGrant, type DomainSpec, grantsFromPolicy, permissionsXml } from "./permissions.js";
import type { Policy } from "./policy.js";
import { signSmime } from "./smime.js";

export interface PermissionsOptions {
  /** Leave out the `ros_discovery_info` allow rule (default: included). */
  readonly rosDiscoveryInfo?: boolean;
  /** Domain ids; default the keystore's. */
  readonly domains?: readonly DomainSpec[];
}

export interface EnclaveCreateOptions extends PermissionsOptions {
  /** `pkcs11:` URI to generate the enclave key in a token (written as key.p11); default key.pem. */
  readonly keyUri?: string;
  readonly validityDays?: number;
  /** The policy to grant from; default sros2's allow-everything default policy. */
  readonly policy?: Policy;
}

export interface EnclaveInfo {
  readonly name: string;
  readonly dir: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly key: "key.pem" | "key.p11" | "none";
  readonly revoked: boolean;
}

/** Creates enclave `name`; FR_ROS2_ENCLAVE_EXISTS if it is there already. */
export async function createEnclave(
  ks: Ros2Keystore,
  name: string,
  opts: EnclaveCreateOptions = {},
): Promise<EnclaveInfo> {
  const [info] = await createEnclaves(ks, [{ ...opts, name }]);
  return info as EnclaveInfo;
}

/** One enclave of a batch: its name and its own options. */
export interface EnclaveRequest extends EnclaveCreateOptions {
  readonly name: string;
}

export interface EnclaveBatchOptions {
  /** Enclaves built at once (default 8): file writes and HSM calls overlap with signing. */
  readonly concurrency?: number;
}

/**
 * Creates many enclaves, reading the CA certificates, the CA keys, governance and CRL once and signing with
 * the same CA signers. Every request is checked before anything is written (names, duplicates, existing
 * enclaves, policies, validity); each enclave is still built aside and renamed into place, so a failure
 * part-way leaves only complete enclaves (those finished before it) and no partial one.
 */
export async function createEnclaves(
  ks: Ros2Keystore,
  requests: readonly EnclaveRequest[],
  batch: EnclaveBatchOptions = {},
): Promise<EnclaveInfo[]> {
  const seen = new Set<string>();
  for (const r of requests) {
    const dir = enclaveDir(ks.root, r.name);
    if (seen.has(r.name)) fail("FR_ROS2_ENCLAVE_EXISTS", `enclave ${r.name} is requested twice`);
    seen.add(r.name);
    if (existsSync(dir)) fail("FR_ROS2_ENCLAVE_EXISTS", `enclave ${r.name} already exists in ${ks.root}`);
    if (r.policy && !r.policy.enclaves.some((e) => e.path === r.name)) {
      fail("FR_ROS2_POLICY_INVALID", `the policy has no <enclave path="${r.name}">`);
    }
    const days = r.validityDays ?? ks.state.enclaveValidityDays;
    if (!Number.isInteger(days) || days < 1 || days > 36500)
      fail("FR_VALIDATION", `validity must be 1–36500 days, not ${days}`);
  }
  if (requests.length === 0) return [];
  const ctx = await issuingContext(ks);
  return inPool(requests, batch.concurrency ?? 8, (r) => buildEnclave(ks, ctx, r));
}

/** What every enclave of a batch shares: the CAs with their signers and the files copied into each. */
interface IssuingContext {
  readonly idCa: CaHandle;
  readonly permCa: CaHandle;
  readonly idSigner: Signer;
  readonly permSigner: Signer;
  /** identity and permissions CA certificates, governance.p7s and (when there is one) crl.pem. */
  readonly copies: readonly { readonly name: string; readonly content: Buffer }[];
}

/**
 * The issuing context of `ks`, kept per keystore object while the files it was read from are unchanged
 * (same inode, size and mtime): creating enclaves one call at a time then costs what a batch does, instead
 * of re-reading and re-parsing the CA certificates and keys every time.
 */
const contexts = new WeakMap<
  Ros2Keystore,
  { readonly stamp: string; readonly ctx: Promise<IssuingContext> }
>();

async function issuingContext(ks: Ros2Keystore): Promise<IssuingContext> {
  const stamp = [
    ks.path(PUBLIC, files.identityCaCert),
    ks.path(PUBLIC, files.permissionsCaCert),
    ks.path(ENCLAVES, files.governanceP7s),
    ks.path(PUBLIC, files.crl),
  ]
    .map((f) => {
      const st = fsSync.statSync(f, { throwIfNoEntry: false });
      return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : "-";
    })
    .join("|");
  const cached = contexts.get(ks);
  if (cached?.stamp === stamp) return cached.ctx;
  const ctx = readIssuingContext(ks);
  contexts.set(ks, { stamp, ctx });
  // A failed read (a CA key missing) is not kept: the next call reports it afresh.
  void ctx.catch(() => {
    if (contexts.get(ks)?.ctx === ctx) contexts.delete(ks);
  });
  return ctx;
}

async function readIssuingContext(ks: Ros2Keystore): Promise<IssuingContext> {
  const idCa = await ks.identityCa();
  const permCa = await ks.permissionsCa();
  // Copies, not sros2's symlinks: an enclave directory stays complete when copied alone to a robot.
  const copies: { name: string; content: Buffer }[] = [
    { name: files.identityCaCert, content: await fs.readFile(ks.path(PUBLIC, files.identityCaCert)) },
    { name: files.permissionsCaCert, content: await fs.readFile(ks.path(PUBLIC, files.permissionsCaCert)) },
    { name: files.governanceP7s, content: await fs.readFile(ks.path(ENCLAVES, files.governanceP7s)) },
  ];
  if (await exists(ks.path(PUBLIC, files.crl)))
    copies.push({ name: files.crl, content: await fs.readFile(ks.path(PUBLIC, files.crl)) });
  return { idCa, permCa, idSigner: await idCa.signer(), permSigner: await permCa.signer(), copies };
}

async function buildEnclave(
  ks: Ros2Keystore,
  ctx: IssuingContext,
  req: EnclaveRequest,
): Promise<EnclaveInfo> {
  const name = req.name;
  const dir = enclaveDir(ks.root, name);
  const policy = req.policy ?? defaultPolicyFor(name);
  const now = ks.deps.clock.now();
  const days = req.validityDays ?? ks.state.enclaveValidityDays;
  const notBefore = new Date(seconds(now.getTime() - BACKDATE_MS));
  // An enclave certificate never outlives its CA.
  const notAfter = new Date(Math.min(seconds(now.getTime() + days * DAY), Date.parse(ctx.idCa.cert.validTo)));
  const key = await newEnclaveKey(ks.deps.keys, ks.state.keyAlgorithm, req.keyUri);
  const certDer = await buildCertificate(
    {
      serial: randomSerial(),
      subject: [{ type: "CN", value: name }],
      notBefore,
      notAfter,
      publicKey: key.publicKey,
      issuer: { certificate: ctx.idCa.certDer },
    },
    ctx.idSigner,
  );
  const grants = grantsFromPolicy(policy, grantOptions(ks, req, notBefore, notAfter), [name]);
  const xml = permissionsXml(grants);
  const p7s = await signSmime(xml, ctx.permCa.certDer, ctx.permSigner, now);
  writeDirAtomicSync(dir, [
    { ...key.file, mode: 0o600 },
    { name: files.cert, content: toPem(certDer, "CERTIFICATE") },
    ...ctx.copies,
    { name: files.permissionsXml, content: xml },
    { name: files.permissionsP7s, content: p7s },
  ]);
  return {
    name,
    dir,
    serial: serialHex(certificateParts(certDer).serial),
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    key: key.file.name,
    revoked: false,
  };
}

/** Runs `fn` over `items` with at most `n` at once; the first failure stops new work and is rethrown. */
async function inPool<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failed) throw failed.error;
  return out;
}

/** Replaces an enclave's permissions with grants from `policy` for the enclave (or with `grants` as given). */
export async function setPermissions(
  ks: Ros2Keystore,
  name: string,
  source: { readonly policy: Policy } | { readonly grants: readonly DdsGrant[] },
  opts: PermissionsOptions = {},
): Promise<void> {
  const dir = await requireEnclave(ks, name);
  const cert = new X509Certificate(
    derFrom(await fs.readFile(path.join(dir, files.cert), "utf8"), "CERTIFICATE"),
  );
  let grants: readonly DdsGrant[];
  if ("policy" in source) {
    if (!source.policy.enclaves.some((e) => e.path === name)) {
      fail(
        "FR_ROS2_POLICY_INVALID",
        `the policy has no <enclave path="${name}">; it names ${source.policy.enclaves.map((e) => e.path).join(", ")}`,
      );
    }
    // The permissions are valid exactly as long as the identity certificate (as sros2).
    grants = grantsFromPolicy(
      source.policy,
      grantOptions(ks, opts, new Date(cert.validFrom), new Date(cert.validTo)),
      [name],
    );
  } else {
    grants = source.grants;
  }
  const permCa = await ks.permissionsCa();
  const xml = permissionsXml(grants);
  const p7s = await signSmime(xml, permCa.certDer, await permCa.signer(), ks.deps.clock.now());
  await writeFilesAtomic([
    { path: path.join(dir, files.permissionsXml), content: xml },
    { path: path.join(dir, files.permissionsP7s), content: p7s },
  ]);
}

function grantOptions(ks: Ros2Keystore, opts: PermissionsOptions, notBefore: Date, notAfter: Date) {
  return {
    notBefore,
    notAfter,
    domains: opts.domains ?? ks.state.domains,
    rosDiscoveryInfo: opts.rosDiscoveryInfo ?? true,
  };
}

/** The enclave's directory; FR_ROS2_ENCLAVE_NOT_FOUND when it has no certificate. */
export async function requireEnclave(ks: Ros2Keystore, name: string): Promise<string> {
  checkEnclaveName(name);
  const dir = enclaveDir(ks.root, name);
  if (!(await exists(path.join(dir, files.cert)))) {
    fail(
      "FR_ROS2_ENCLAVE_NOT_FOUND",
      `no enclave ${name} in ${ks.root}; "ros2 enclave list" shows the enclaves`,
    );
  }
  return dir;
}

/** Every enclave (a directory under enclaves/ with a cert.pem), sorted by name. */
export async function listEnclaves(ks: Ros2Keystore): Promise<EnclaveInfo[]> {
  const out: EnclaveInfo[] = [];
  const walk = async (dir: string, segs: string[]) => {
    if (segs.length > 32) return;
    const entries = await fs.readdir(dir, { withFileTypes: true });
    if (segs.length > 0 && entries.some((e) => e.name === files.cert)) {
      out.push(await enclaveInfo(ks, dir, `/${segs.join("/")}`));
    }
    for (const e of entries) {
      if (e.isDirectory() && !e.name.startsWith(".")) await walk(path.join(dir, e.name), [...segs, e.name]);
    }
  };
  await walk(ks.path(ENCLAVES), []);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function enclaveInfo(ks: Ros2Keystore, dir: string, name: string): Promise<EnclaveInfo> {
  const der = derFrom(await fs.readFile(path.join(dir, files.cert), "utf8"), "CERTIFICATE");
  const cert = new X509Certificate(der);
  const serial = serialHex(certificateParts(der).serial);
  const key = (await exists(path.join(dir, files.keyP11)))
    ? "key.p11"
    : (await exists(path.join(dir, files.keyPem)))
      ? "key.pem"
      : "none";
  return {
    name,
    dir,
    serial,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    key,
    revoked: ks.state.revoked.some((r) => r.serial === serial),
  };
}
