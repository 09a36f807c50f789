/**
 * Enclaves in a keystore: create (key, certificate from the identity CA, CA copies, governance, signed
 * permissions — built in a temporary directory and renamed into place), replace permissions, list.
 */
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
import { buildDirAtomic, exists, writeFilesAtomic } from "./files.js";
import { BACKDATE_MS, DAY, type Ros2Keystore, generateKey, seconds } from "./keystore.js";
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
  const dir = enclaveDir(ks.root, name);
  if (await exists(dir)) fail("FR_ROS2_ENCLAVE_EXISTS", `enclave ${name} already exists in ${ks.root}`);
  const policy = opts.policy ?? defaultPolicyFor(name);
  if (!policy.enclaves.some((e) => e.path === name)) {
    fail("FR_ROS2_POLICY_INVALID", `the policy has no <enclave path="${name}">`);
  }
  const idCa = await ks.identityCa();
  const permCa = await ks.permissionsCa();
  const idSigner = await idCa.signer();
  const permSigner = await permCa.signer();
  const now = ks.deps.clock.now();
  const days = opts.validityDays ?? ks.state.enclaveValidityDays;
  if (!Number.isInteger(days) || days < 1 || days > 36500)
    fail("FR_VALIDATION", `validity must be 1–36500 days, not ${days}`);
  const notBefore = new Date(seconds(now.getTime() - BACKDATE_MS));
  // An enclave certificate never outlives its CA.
  const notAfter = new Date(Math.min(seconds(now.getTime() + days * DAY), Date.parse(idCa.cert.validTo)));
  await buildDirAtomic(dir, async (tmp) => {
    const key = await generateKey(ks.deps.keys, tmp, "key", opts.keyUri, ks.state.keyAlgorithm);
    const certDer = await buildCertificate(
      {
        serial: randomSerial(),
        subject: [{ type: "CN", value: name }],
        notBefore,
        notAfter,
        publicKey: key.publicKey,
        issuer: { certificate: idCa.certDer },
      },
      idSigner,
    );
    await fs.writeFile(path.join(tmp, files.cert), toPem(certDer, "CERTIFICATE"));
    // Copies, not sros2's symlinks: an enclave directory stays complete when copied alone to a robot.
    await fs.copyFile(ks.path(PUBLIC, files.identityCaCert), path.join(tmp, files.identityCaCert));
    await fs.copyFile(ks.path(PUBLIC, files.permissionsCaCert), path.join(tmp, files.permissionsCaCert));
    await fs.copyFile(ks.path(ENCLAVES, files.governanceP7s), path.join(tmp, files.governanceP7s));
    if (await exists(ks.path(PUBLIC, files.crl)))
      await fs.copyFile(ks.path(PUBLIC, files.crl), path.join(tmp, files.crl));
    const grants = grantsFromPolicy(policy, grantOptions(ks, opts, notBefore, notAfter), [name]);
    const xml = permissionsXml(grants);
    await fs.writeFile(path.join(tmp, files.permissionsXml), xml);
    await fs.writeFile(
      path.join(tmp, files.permissionsP7s),
      await signSmime(xml, permCa.certDer, permSigner, now),
    );
  });
  return enclaveInfo(ks, dir, name);
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
