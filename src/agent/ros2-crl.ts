/**
 * The identity CRL of fleet-provisioned ROS 2 enclaves: fetched from `ros2/crl/pem` (no token, like
 * pki/crl), checked to be signed by the keystore's identity CA, and written as crl.pem where rmw hands it to
 * the DDS plugins (Cyclone DDS `Security/Authentication/CRL`). `agent ros2-enclave` writes it with each
 * enclave; `agent ros2-crl` refreshes every enclave of a keystore.
 */
import "reflect-metadata";
import fs from "node:fs/promises";
import path from "node:path";
import * as px509 from "@peculiar/x509";
import { fail } from "../errors/index.js";
import { writeFleetCrl } from "../ros2/fleet-keystore.js";
import { PUBLIC, files } from "../ros2/layout.js";
import { Unreachable, getBounded } from "./enroll-http.js";
import { readConfig } from "./files.js";

const MAX_CRL_BYTES = 4 * 1024 * 1024;

/** GET `ros2/crl/pem`; `ca` verifies the server's TLS certificate. */
export async function fetchRos2Crl(server: string, ca: string | Buffer | undefined): Promise<string> {
  const url = new URL("/v1/ros2/crl/pem", server);
  const { status, body } = await getBounded(url, ca, MAX_CRL_BYTES, "the CRL");
  const text = body.toString("utf8");
  if (status === 200) return text;
  throw new Unreachable(
    `${url.href}: the server answered ${status} (${text.slice(0, 200)}); is ros2/config done?`,
  );
}

/** Refuses a CRL that is not a PEM CRL signed by `identityCaPem` (the DDS plugins would refuse every peer). */
export async function checkRos2Crl(crlPem: string, identityCaPem: string): Promise<void> {
  let crl: px509.X509Crl;
  try {
    crl = new px509.X509Crl(crlPem);
  } catch (e) {
    return fail("FR_ROS2_CRL", `it cannot be parsed as a PEM CRL (${(e as Error).message})`);
  }
  const ca = new px509.X509Certificate(identityCaPem);
  if (!(await crl.verify({ publicKey: ca }).catch(() => false)))
    fail(
      "FR_ROS2_CRL",
      "it is not signed by the keystore's identity CA; is --keystore the keystore the server's ros2/config serves?",
    );
}

export interface Ros2CrlOptions {
  readonly keystore: string;
  /** Server URL and CA file; default those recorded at enrollment in `identity` (agent.json). */
  readonly server?: string | undefined;
  readonly caCert?: string | undefined;
  readonly identity?: string | undefined;
}

/** Fetches the CRL and writes it into public/ and every enclave of the keystore at once. */
export async function refreshRos2Crl(
  o: Ros2CrlOptions,
): Promise<{ keystore: string; enclaves: number; thisUpdate: string; nextUpdate: string | null }> {
  const cfg = o.identity ? await readConfig(o.identity) : undefined;
  const server =
    o.server ??
    cfg?.server ??
    fail("FR_VALIDATION", "give --server, or --identity with the directory the device enrolled into");
  const caFile = o.caCert ?? cfg?.caCert;
  let idCa: string;
  try {
    idCa = await fs.readFile(path.join(o.keystore, PUBLIC, files.identityCaCert), "utf8");
  } catch {
    return fail(
      "FR_ROS2_KEYSTORE",
      `${o.keystore} has no ${PUBLIC}/${files.identityCaCert}; obtain an enclave first (agent ros2-enclave)`,
    );
  }
  const pem = await fetchRos2Crl(server, caFile ? await fs.readFile(caFile) : undefined);
  await checkRos2Crl(pem, idCa);
  const dirs = await writeFleetCrl(o.keystore, pem);
  const crl = new px509.X509Crl(pem);
  return {
    keystore: path.resolve(o.keystore),
    enclaves: dirs.length,
    thisUpdate: crl.thisUpdate.toISOString(),
    nextUpdate: crl.nextUpdate ? crl.nextUpdate.toISOString() : null,
  };
}
