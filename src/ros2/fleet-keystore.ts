/**
 * The robot's side of fleet provisioning (`fleetroot agent ros2-enclave`): checks what the server sent for
 * an enclave and writes it into a keystore in sros2's layout, so rmw's security loader and
 * `fleetroot ros2 verify` read it like any other keystore.
 *
 *   DIR/public/identity_ca.cert.pem  permissions_ca.cert.pem  [identity_ca.chain.pem  permissions_ca.chain.pem]
 *   DIR/enclaves/governance.xml  governance.p7s
 *   DIR/enclaves/<ns>/<node>/cert.pem  key.pem|key.p11  identity_ca.cert.pem  permissions_ca.cert.pem
 *                            governance.p7s  permissions.xml  permissions.p7s  crl.pem
 *
 * The `*.chain.pem` files (ca_source pki) hold each CA's cross-certificate up to the fleet root; DDS reads
 * only the self-signed `*.cert.pem`. There is no private/: the CA keys stay on the server.
 */
import crypto, { X509Certificate } from "node:crypto";
import fsSync from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { fail } from "../errors/index.js";
import { tempSibling } from "../util/atomic-write.js";
import { mkdirp } from "../util/index.js";
import { writeDirAtomicSync, writeFilesAtomic } from "./files.js";
import { ENCLAVES, PUBLIC, checkEnclaveName, enclaveDir, files } from "./layout.js";
import { verifySmime } from "./smime.js";

export interface FleetEnclaveBundle {
  readonly enclave: string;
  /** PEM */
  readonly certificate: string;
  readonly key: { readonly name: "key.pem" | "key.p11"; readonly content: string };
  readonly identityCa: string;
  readonly permissionsCa: string;
  readonly identityCaChain: readonly string[];
  readonly permissionsCaChain: readonly string[];
  readonly governanceXml: string;
  readonly governanceP7s: string;
  readonly permissionsXml: string;
  readonly permissionsP7s: string;
  /** The identity CA's CRL (PEM, from `ros2/crl/pem`): written as crl.pem in the enclave and public/. */
  readonly crl?: string | undefined;
}

const bad = (why: string): never => fail("FR_ROS2_SIGNATURE", `the server's enclave answer: ${why}`);
const norm = (s: string) => s.replace(/\r\n/g, "\n").trimEnd();

/**
 * Checks the answer as the DDS plugins will, before anything is written: the certificate is for `enclave`
 * and the robot's key (`publicKey`, SPKI DER), issued by the identity CA; governance and permissions are
 * signed by the permissions CA and equal to their XML; a CA chain (ca_source pki) certifies the same CA key
 * and ends at one of `roots` (the fleet root the device already trusts from enrollment).
 */
export function checkFleetEnclave(
  b: FleetEnclaveBundle,
  publicKey: Uint8Array,
  roots: readonly X509Certificate[],
): void {
  checkEnclaveName(b.enclave);
  const idCa = new X509Certificate(b.identityCa);
  const permCa = new X509Certificate(b.permissionsCa);
  const cert = new X509Certificate(b.certificate);
  if (!cert.checkIssued(idCa) || !cert.verify(idCa.publicKey))
    bad("the certificate is not signed by the identity CA");
  const spki = crypto.createPublicKey({ key: Buffer.from(publicKey), format: "der", type: "spki" });
  if (!cert.publicKey.equals(spki)) bad("the certificate is not for the key this robot made");
  if (cert.subject !== `CN=${b.enclave}`)
    bad(`the certificate subject is ${cert.subject}, not CN=${b.enclave}`);
  const gov = verifySmime(b.governanceP7s, permCa.raw, "governance.p7s");
  if (norm(gov.content) !== norm(b.governanceXml)) bad("governance.xml differs from governance.p7s");
  const perm = verifySmime(b.permissionsP7s, permCa.raw, "permissions.p7s");
  if (norm(perm.content) !== norm(b.permissionsXml)) bad("permissions.xml differs from permissions.p7s");
  for (const [ca, chain, what] of [
    [idCa, b.identityCaChain, "identity"],
    [permCa, b.permissionsCaChain, "permissions"],
  ] as const) {
    if (chain.length > 0) checkChain(ca, chain, roots, what);
  }
}

function checkChain(
  anchor: X509Certificate,
  chain: readonly string[],
  roots: readonly X509Certificate[],
  what: string,
) {
  if (chain.length > 8) bad(`the ${what} CA chain is longer than 8 certificates`);
  const certs = chain.map((p) => new X509Certificate(p));
  const first = certs[0]!;
  if (first.subject !== anchor.subject || !first.publicKey.equals(anchor.publicKey))
    bad(`the ${what} CA chain does not start with a certificate for the ${what} CA's key`);
  for (let i = 0; i + 1 < certs.length; i++) {
    const [c, up] = [certs[i]!, certs[i + 1]!];
    if (!c.checkIssued(up) || !c.verify(up.publicKey)) bad(`the ${what} CA chain breaks at ${c.subject}`);
  }
  const top = certs[certs.length - 1]!;
  if (!roots.some((r) => r.raw.equals(top.raw)))
    bad(`the ${what} CA chain does not end at the fleet root this device trusts (chain.pem from enrollment)`);
}

/**
 * Writes the enclave directory (built aside, renamed into place) and then the keystore's CA certificates
 * and governance (replaced together). An existing enclave is replaced only with `replace`; the old
 * directory is moved aside first and removed once the new one is in place.
 */
export async function writeFleetEnclave(
  root: string,
  b: FleetEnclaveBundle,
  opts: { readonly replace?: boolean } = {},
): Promise<string> {
  const dir = enclaveDir(path.resolve(root), b.enclave);
  const existing = fsSync.existsSync(dir);
  if (existing && !opts.replace) {
    fail(
      "FR_ROS2_ENCLAVE_EXISTS",
      `enclave ${b.enclave} already exists in ${root}; pass --replace to renew it`,
    );
  }
  await mkdirp(path.join(root, PUBLIC), 0o755);
  await mkdirp(path.join(root, ENCLAVES), 0o755);
  const entries = [
    { ...b.key, mode: 0o600 },
    { name: files.cert, content: b.certificate },
    { name: files.identityCaCert, content: b.identityCa },
    { name: files.permissionsCaCert, content: b.permissionsCa },
    { name: files.governanceP7s, content: b.governanceP7s },
    { name: files.permissionsXml, content: b.permissionsXml },
    { name: files.permissionsP7s, content: b.permissionsP7s },
    ...(b.crl !== undefined ? [{ name: files.crl, content: b.crl }] : []),
  ];
  let aside: string | undefined;
  if (existing) {
    aside = tempSibling(dir);
    await fs.rename(dir, aside);
  }
  try {
    writeDirAtomicSync(dir, entries);
  } catch (e) {
    if (aside) await fs.rename(aside, dir);
    throw e;
  }
  if (aside) await fs.rm(aside, { recursive: true, force: true });
  const shared = [
    { path: path.join(root, PUBLIC, files.identityCaCert), content: b.identityCa },
    { path: path.join(root, PUBLIC, files.permissionsCaCert), content: b.permissionsCa },
    { path: path.join(root, ENCLAVES, files.governanceXml), content: b.governanceXml },
    { path: path.join(root, ENCLAVES, files.governanceP7s), content: b.governanceP7s },
  ];
  if (b.crl !== undefined) shared.push({ path: path.join(root, PUBLIC, files.crl), content: b.crl });
  if (b.identityCaChain.length)
    shared.push({
      path: path.join(root, PUBLIC, "identity_ca.chain.pem"),
      content: b.identityCaChain.join(""),
    });
  if (b.permissionsCaChain.length)
    shared.push({
      path: path.join(root, PUBLIC, "permissions_ca.chain.pem"),
      content: b.permissionsCaChain.join(""),
    });
  await writeFilesAtomic(shared);
  return dir;
}

/**
 * Writes `crlPem` as public/crl.pem and as crl.pem in every enclave of the keystore at `root`, all files
 * staged first and then renamed (`agent ros2-crl`). Returns the enclave directories updated.
 */
export async function writeFleetCrl(root: string, crlPem: string): Promise<string[]> {
  if (!fsSync.existsSync(path.join(root, PUBLIC, files.identityCaCert)))
    fail("FR_ROS2_KEYSTORE", `${root} is not a keystore: ${PUBLIC}/${files.identityCaCert} is missing`);
  const dirs: string[] = [];
  const walk = async (dir: string, depth: number) => {
    if (depth > 32) return;
    const entries = await fs.readdir(dir, { withFileTypes: true });
    if (depth > 0 && entries.some((e) => e.name === files.cert)) dirs.push(dir);
    for (const e of entries) {
      if (e.isDirectory() && !e.name.startsWith(".")) await walk(path.join(dir, e.name), depth + 1);
    }
  };
  if (fsSync.existsSync(path.join(root, ENCLAVES))) await walk(path.join(root, ENCLAVES), 0);
  await writeFilesAtomic([
    { path: path.join(root, PUBLIC, files.crl), content: crlPem },
    ...dirs.map((d) => ({ path: path.join(d, files.crl), content: crlPem })),
  ]);
  return dirs.sort();
}
