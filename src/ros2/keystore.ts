/**
 * A ROS 2 security keystore on disk in sros2's layout, with separate identity and permissions CAs by
 * default (sros2 uses one CA for both, which lets any enclave's key sign permissions). CA keys are opened
 * through key URIs: `private/<ca>.key.pem` (software) or `private/<ca>.key.p11` (a `pkcs11:` URI), so either
 * CA can live in an HSM. Keystores made by sros2 open too (its `ca.key.pem` plus symlinks).
 */
import fs from "node:fs/promises";
import path from "node:path";
import { X509Certificate } from "node:crypto";
import { type KeyAlgorithm, type KeyManager, type Signer, keyAlgorithms } from "../keys/index.js";
import { buildCertificate, crlReasons, derFrom, randomSerial, toPem } from "../crypto/index.js";
import { type FleetError, fail } from "../errors/index.js";
import type { Clock } from "../util/clock.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { buildDirAtomic, exists } from "./files.js";
import { type GovernanceOptions, checkDomains, governanceXml } from "./governance.js";
import { ENCLAVES, PRIVATE, PUBLIC, files } from "./layout.js";
import type { DomainSpec } from "./permissions.js";
import { signSmime } from "./smime.js";

const DAY = 86_400_000;
/** Certificates start a little in the past so robots with a slightly slow clock accept them at once. */
const BACKDATE_MS = 60_000;

export interface RevokedEntry {
  readonly serial: string;
  readonly enclave: string;
  readonly revokedAt: string;
  readonly reason?: string;
}

/** Fleetroot's state file (`private/fleetroot.json`); sros2 keystores have none and get the defaults. */
export interface KeystoreState {
  readonly version: 1;
  readonly sharedCa: boolean;
  readonly domains: readonly DomainSpec[];
  readonly enclaveValidityDays: number;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly crlNumber: number;
  readonly revoked: readonly RevokedEntry[];
}

export interface KeystoreDeps {
  readonly keys: KeyManager;
  readonly clock: Clock;
}

export interface KeystoreCreateOptions {
  /** One CA for identity and permissions, as sros2 (default false: two CAs). */
  readonly sharedCa?: boolean;
  readonly caValidityDays?: number;
  readonly enclaveValidityDays?: number;
  readonly domains?: readonly DomainSpec[];
  readonly governance?: GovernanceOptions;
  /** Key URIs to generate the CA keys at (e.g. `pkcs11:…`); default software keys in `private/`. */
  readonly identityCaKey?: string;
  readonly permissionsCaKey?: string;
  /** With sharedCa: the one CA's key URI. */
  readonly caKey?: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  readonly identityCaName?: string;
  readonly permissionsCaName?: string;
}

export interface CaHandle {
  readonly certDer: Buffer;
  readonly cert: X509Certificate;
  signer(): Promise<Signer>;
}

const defaultState = (): KeystoreState => ({
  version: 1,
  sharedCa: true,
  domains: [0],
  enclaveValidityDays: 3650,
  keyAlgorithm: "ecdsa-p256",
  crlNumber: 0,
  revoked: [],
});

export class Ros2Keystore {
  private constructor(
    readonly root: string,
    readonly deps: KeystoreDeps,
    private stateValue: KeystoreState,
  ) {}

  get state(): KeystoreState {
    return this.stateValue;
  }

  /** Opens an existing keystore (Fleetroot's or sros2's); FR_ROS2_KEYSTORE names what is missing. */
  static async open(dir: string, deps: KeystoreDeps): Promise<Ros2Keystore> {
    const root = path.resolve(dir);
    if (!(await exists(root)))
      fail("FR_ROS2_KEYSTORE", `keystore ${dir} does not exist; create it with "ros2 keystore create"`);
    const needed = [
      path.join(PUBLIC, files.identityCaCert),
      path.join(PUBLIC, files.permissionsCaCert),
      path.join(ENCLAVES, files.governanceP7s),
    ];
    for (const f of needed) {
      if (!(await exists(path.join(root, f)))) {
        fail("FR_ROS2_KEYSTORE", `${dir} is not a complete keystore: ${f} is missing`);
      }
    }
    let state = defaultState();
    const statePath = path.join(root, PRIVATE, files.state);
    if (await exists(statePath)) {
      let raw: unknown;
      try {
        raw = JSON.parse(await fs.readFile(statePath, "utf8"));
      } catch (e) {
        fail("FR_ROS2_KEYSTORE", `${statePath} is not valid JSON: ${(e as Error).message}`);
      }
      state = stateFrom(raw, statePath);
    }
    return new Ros2Keystore(root, deps, state);
  }

  /** Creates a keystore at `dir` (which must not exist or be empty), atomically. */
  static async create(dir: string, opts: KeystoreCreateOptions, deps: KeystoreDeps): Promise<Ros2Keystore> {
    const root = path.resolve(dir);
    if (await exists(root)) {
      const entries = await fs.readdir(root).catch(() => ["(not a directory)"]);
      if (entries.length > 0)
        fail("FR_ROS2_KEYSTORE", `${dir} already exists and is not empty; choose a new directory`);
      await fs.rmdir(root);
    }
    const domains = opts.domains ?? [0];
    checkDomains(domains);
    const caDays = positiveDays(opts.caValidityDays ?? 3650, "CA validity");
    const enclaveDays = positiveDays(opts.enclaveValidityDays ?? 3650, "enclave validity");
    const algorithm = opts.keyAlgorithm ?? "ecdsa-p256";
    const shared = opts.sharedCa ?? false;
    const state: KeystoreState = {
      version: 1,
      sharedCa: shared,
      domains,
      enclaveValidityDays: enclaveDays,
      keyAlgorithm: algorithm,
      crlNumber: 0,
      revoked: [],
    };
    await buildDirAtomic(root, async (tmp) => {
      for (const d of [PUBLIC, PRIVATE, ENCLAVES])
        await fs.mkdir(path.join(tmp, d), { mode: d === PRIVATE ? 0o700 : 0o755 });
      const now = deps.clock.now();
      const makeCa = async (base: string, name: string, keyUri: string | undefined) => {
        const signer = await generateKey(deps.keys, path.join(tmp, PRIVATE), base, keyUri, algorithm);
        const der = await buildCertificate(
          {
            serial: randomSerial(),
            subject: [{ type: "CN", value: name }],
            notBefore: new Date(seconds(now.getTime() - BACKDATE_MS)),
            notAfter: new Date(seconds(now.getTime() + caDays * DAY)),
            publicKey: signer.publicKey,
            ca: {},
          },
          signer,
        );
        return { signer, der };
      };
      let permissions: { signer: Signer; der: Buffer };
      if (shared) {
        const ca = await makeCa(files.sharedCaKey, opts.identityCaName ?? "Fleetroot ROS 2 CA", opts.caKey);
        await fs.writeFile(path.join(tmp, PUBLIC, files.sharedCaCert), toPem(ca.der, "CERTIFICATE"));
        // sros2's layout: the two role names are links to the one CA.
        await fs.symlink(files.sharedCaCert, path.join(tmp, PUBLIC, files.identityCaCert));
        await fs.symlink(files.sharedCaCert, path.join(tmp, PUBLIC, files.permissionsCaCert));
        const ext = (await exists(path.join(tmp, PRIVATE, `${files.sharedCaKey}.p11`))) ? ".p11" : ".pem";
        await fs.symlink(
          `${files.sharedCaKey}${ext}`,
          path.join(tmp, PRIVATE, `${files.identityCaKey}${ext}`),
        );
        await fs.symlink(
          `${files.sharedCaKey}${ext}`,
          path.join(tmp, PRIVATE, `${files.permissionsCaKey}${ext}`),
        );
        permissions = ca;
      } else {
        const id = await makeCa(
          files.identityCaKey,
          opts.identityCaName ?? "Fleetroot ROS 2 Identity CA",
          opts.identityCaKey,
        );
        permissions = await makeCa(
          files.permissionsCaKey,
          opts.permissionsCaName ?? "Fleetroot ROS 2 Permissions CA",
          opts.permissionsCaKey,
        );
        await fs.writeFile(path.join(tmp, PUBLIC, files.identityCaCert), toPem(id.der, "CERTIFICATE"));
        await fs.writeFile(
          path.join(tmp, PUBLIC, files.permissionsCaCert),
          toPem(permissions.der, "CERTIFICATE"),
        );
      }
      const gov = governanceXml({ domains, ...opts.governance });
      await fs.writeFile(path.join(tmp, ENCLAVES, files.governanceXml), gov);
      await fs.writeFile(
        path.join(tmp, ENCLAVES, files.governanceP7s),
        await signSmime(gov, permissions.der, permissions.signer, now),
      );
      await fs.writeFile(path.join(tmp, PRIVATE, files.state), JSON.stringify(state, null, 2) + "\n", {
        mode: 0o600,
      });
    });
    return new Ros2Keystore(root, deps, state);
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  async identityCa(): Promise<CaHandle> {
    return this.ca(files.identityCaCert, files.identityCaKey);
  }

  async permissionsCa(): Promise<CaHandle> {
    return this.ca(files.permissionsCaCert, files.permissionsCaKey);
  }

  private async ca(certFile: string, keyBase: string): Promise<CaHandle> {
    let certDer: Buffer;
    let cert: X509Certificate;
    try {
      certDer = derFrom(await fs.readFile(this.path(PUBLIC, certFile), "utf8"), "CERTIFICATE");
      cert = new X509Certificate(certDer);
    } catch (e) {
      // Name the file: a bare "no -----BEGIN----- block" does not say which of the keystore's files it is.
      const why = (e as FleetError).detail ?? (e as Error).message;
      return fail("FR_ROS2_KEYSTORE", `${path.join(PUBLIC, certFile)} in ${this.root} is unusable: ${why}`);
    }
    let signer: Signer | undefined;
    return {
      certDer,
      cert,
      signer: async () => {
        signer ??= await openKey(this.deps.keys, this.path(PRIVATE), keyBase);
        return signer;
      },
    };
  }

  async saveState(next: KeystoreState): Promise<void> {
    await writeFileAtomic(this.path(PRIVATE, files.state), JSON.stringify(next, null, 2) + "\n", 0o600);
    this.stateValue = next;
  }
}

/** Generates a key as `<dir>/<base>.pem` (software) or at `uri` (recorded in `<dir>/<base>.p11`). */
export async function generateKey(
  keys: KeyManager,
  dir: string,
  base: string,
  uri: string | undefined,
  algorithm: KeyAlgorithm,
): Promise<Signer> {
  if (uri && !uri.startsWith("file:")) {
    const signer = await keys.generate(uri, algorithm);
    // Signer.uri has any pin-value removed: a PIN never lands in the keystore (use pin-source).
    await fs.writeFile(path.join(dir, `${base}.p11`), signer.uri, { mode: 0o600 });
    return signer;
  }
  return keys.generate(`file:${path.join(dir, `${base}.pem`)}`, algorithm);
}

/** Opens `<dir>/<base>.p11` (its URI) or `<dir>/<base>.pem`. */
export async function openKey(keys: KeyManager, dir: string, base: string): Promise<Signer> {
  const p11 = path.join(dir, `${base}.p11`);
  if (await exists(p11)) return keys.open((await fs.readFile(p11, "utf8")).trim());
  const pem = path.join(dir, `${base}.pem`);
  if (!(await exists(pem))) {
    fail(
      "FR_ROS2_KEYSTORE",
      `the keystore has no ${base}.pem or ${base}.p11 in ${dir}; this command needs the CA key`,
    );
  }
  return keys.open(`file:${await fs.realpath(pem)}`);
}

/**
 * Checks `private/fleetroot.json` field by field (missing fields take sros2's defaults): a damaged or
 * hand-edited state must stop the command, not end up as `<min>undefined</min>` in signed permissions.
 */
function stateFrom(raw: unknown, file: string): KeystoreState {
  const bad = (what: string): never => fail("FR_ROS2_KEYSTORE", `${file}: ${what}`);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) bad("must hold a JSON object");
  const s = { ...defaultState(), ...(raw as Record<string, unknown>) };
  if (s.version !== 1) bad(`version must be 1, not ${JSON.stringify(s.version)}`);
  if (typeof s.sharedCa !== "boolean") bad("sharedCa must be true or false");
  const isDomain = (d: unknown) =>
    typeof d === "number" ||
    (typeof d === "object" &&
      d !== null &&
      typeof (d as { min?: unknown }).min === "number" &&
      ["number", "undefined"].includes(typeof (d as { max?: unknown }).max));
  if (!Array.isArray(s.domains) || !s.domains.every(isDomain))
    bad("domains must be a list of domain ids or {min, max} ranges");
  try {
    checkDomains(s.domains);
  } catch (e) {
    bad(`domains: ${(e as FleetError).detail ?? String(e)}`);
  }
  if (!Number.isInteger(s.enclaveValidityDays) || s.enclaveValidityDays < 1 || s.enclaveValidityDays > 36500)
    bad("enclaveValidityDays must be a whole number of days, 1–36500");
  if (!keyAlgorithms.includes(s.keyAlgorithm)) bad(`keyAlgorithm must be one of ${keyAlgorithms.join(", ")}`);
  if (!Number.isInteger(s.crlNumber) || s.crlNumber < 0) bad("crlNumber must be a whole number ≥ 0");
  if (!Array.isArray(s.revoked)) bad("revoked must be a list");
  for (const r of s.revoked as unknown[]) {
    const e = (typeof r === "object" && r !== null ? r : {}) as Record<string, unknown>;
    const ok =
      typeof e.serial === "string" &&
      /^[0-9a-f]{1,40}$/i.test(e.serial) &&
      typeof e.enclave === "string" &&
      typeof e.revokedAt === "string" &&
      !Number.isNaN(Date.parse(e.revokedAt)) &&
      (e.reason === undefined || (typeof e.reason === "string" && Object.hasOwn(crlReasons, e.reason)));
    if (!ok)
      bad(`revoked entry ${JSON.stringify(r)} needs serial (hex), enclave, revokedAt and a known reason`);
  }
  return s as KeystoreState;
}

function positiveDays(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 36500)
    fail("FR_VALIDATION", `${what} must be 1–36500 days, not ${n}`);
  return n;
}

/** Milliseconds rounded down to whole seconds (X.509 and DDS times carry no fractions). */
export function seconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

export { DAY, BACKDATE_MS };
