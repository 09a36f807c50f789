/**
 * The sros2 keystore layout (what `ros2 security create_keystore` / `create_enclave` make), which rmw's
 * security loader reads through ROS_SECURITY_KEYSTORE / ROS_SECURITY_ENCLAVE_OVERRIDE.
 */
import path from "node:path";
import { fail } from "../errors/index.js";

export const PUBLIC = "public";
export const PRIVATE = "private";
export const ENCLAVES = "enclaves";

export const files = {
  identityCaCert: "identity_ca.cert.pem",
  permissionsCaCert: "permissions_ca.cert.pem",
  sharedCaCert: "ca.cert.pem",
  identityCaKey: "identity_ca.key",
  permissionsCaKey: "permissions_ca.key",
  sharedCaKey: "ca.key",
  governanceXml: "governance.xml",
  governanceP7s: "governance.p7s",
  cert: "cert.pem",
  keyPem: "key.pem",
  keyP11: "key.p11",
  permissionsXml: "permissions.xml",
  permissionsP7s: "permissions.p7s",
  crl: "crl.pem",
  /** Fleetroot's own state (revocations, defaults); sros2 ignores it. */
  state: "fleetroot.json",
} as const;

/** The files every enclave must hold (plus key.pem or key.p11). */
export const enclaveFiles = [
  files.cert,
  files.identityCaCert,
  files.permissionsCaCert,
  files.governanceP7s,
  files.permissionsXml,
  files.permissionsP7s,
] as const;

/** The certificate's CN holds the name: X.520 ub-common-name. */
const MAX_ENCLAVE_NAME = 64;

/**
 * Enclave names are fully qualified ROS names: `/` followed by segments of letters, digits and `_`, not
 * starting with a digit (rcl's namespace rules). The name is also the certificate's CN (at most 64 chars).
 * The one check for every enclave name: CLI arguments, policy `<enclave path>` (policy.ts), API fields.
 * `where` (a policy file or name) starts the message when given.
 */
export function checkEnclaveName(name: string, where?: string): string {
  const at = where ? `${where}: ` : "";
  if (!/^(\/[A-Za-z_][A-Za-z0-9_]*)+$/.test(name)) {
    fail(
      "FR_ROS2_ENCLAVE_NAME",
      `${at}${shownName(name)} is not a fully qualified enclave name; use /segment/segment (letters, digits, _)`,
    );
  }
  if (name.length > MAX_ENCLAVE_NAME) {
    fail(
      "FR_ROS2_ENCLAVE_NAME",
      `${at}${shownName(name)} is ${name.length} characters, longer than ${MAX_ENCLAVE_NAME} (the CN limit)`,
    );
  }
  return name;
}

/** A name quoted for a message: control characters escaped, at most 80 characters shown. */
function shownName(name: string): string {
  return name.length > 80 ? `${JSON.stringify(name.slice(0, 80)).slice(0, -1)}…"` : JSON.stringify(name);
}

/** The directory of enclave `name` in keystore `root`. */
export function enclaveDir(root: string, name: string): string {
  return path.join(root, ENCLAVES, ...checkEnclaveName(name).split("/").filter(Boolean));
}
