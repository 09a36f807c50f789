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

/**
 * Enclave names are fully qualified ROS names: `/` followed by segments of letters, digits and `_`, not
 * starting with a digit (rcl's namespace rules). The name is also the certificate's CN (at most 64 chars).
 */
export function checkEnclaveName(name: string): string {
  if (!/^(\/[A-Za-z_][A-Za-z0-9_]*)+$/.test(name)) {
    fail(
      "FR_ROS2_ENCLAVE_NAME",
      `"${name}" is not a fully qualified enclave name; use /segment/segment (letters, digits, _)`,
    );
  }
  if (name.length > 64) fail("FR_ROS2_ENCLAVE_NAME", `"${name}" is longer than 64 characters (the CN limit)`);
  return name;
}

/** The directory of enclave `name` in keystore `root`. */
export function enclaveDir(root: string, name: string): string {
  return path.join(root, ENCLAVES, ...checkEnclaveName(name).split("/").filter(Boolean));
}
