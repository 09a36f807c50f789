/**
 * `fleetroot agent ros2-enclave`: an enrolled robot obtains a ROS 2 enclave. The enclave key is made here
 * (in software for key.pem, or inside a PKCS#11 token for key.p11) and only a CSR travels; the request is
 * authenticated by the device certificate over mutual TLS. The answer is checked (src/ros2/fleet-keystore.ts)
 * and written into the keystore atomically, with the identity CA's CRL (ros2/crl) as crl.pem.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fail } from "../errors/index.js";
import {
  type KeyAlgorithm,
  type KeyManager,
  type Signer,
  createKeyManager,
  parseKeyUri,
} from "../keys/index.js";
import { type FleetEnclaveBundle, checkFleetEnclave, writeFleetEnclave } from "../ros2/fleet-keystore.js";
import { enclaveDir } from "../ros2/index.js";
import { buildDeviceCsr, generateSoftwareKey } from "./enroll-crypto.js";
import { dataOf, postJson } from "./enroll-http.js";
import { checkRos2Crl, fetchRos2Crl } from "./ros2-crl.js";
import { type Pair, readConfig, readPair } from "./files.js";

export interface Ros2EnclaveOptions {
  /** The device's identity directory (`agent enroll --out`). */
  readonly identity: string;
  readonly enclave: string;
  /** Keystore directory (ROS_SECURITY_KEYSTORE); created when missing. */
  readonly keystore: string;
  /** Server URL and CA file; default those recorded at enrollment (agent.json). */
  readonly server?: string | undefined;
  readonly caCert?: string | undefined;
  /** `pkcs11:` URI to make the enclave key in a token (key.p11); default a software key (key.pem). */
  readonly keyUri?: string | undefined;
  readonly keyAlgorithm?: KeyAlgorithm | undefined;
  /** Replace an existing enclave (renewal). */
  readonly replace?: boolean | undefined;
  readonly keys?: KeyManager | undefined;
}

export interface Ros2EnclaveOutcome {
  readonly deviceId: string;
  readonly enclave: string;
  readonly dir: string;
  readonly policy: string;
  readonly serial: string;
  readonly notAfter: string;
  readonly key: "key.pem" | "key.p11";
}

/** The device's TLS client key: the pair's key.pem, or a `file:` key URI (Node's TLS takes no PKCS#11 key). */
function clientKeyOf(pair: Pair): string {
  if (pair.keyPem !== undefined) return pair.keyPem;
  const parsed = parseKeyUri((pair.state.key as { uri: string }).uri);
  if (parsed.scheme !== "file") {
    fail(
      "FR_AGENT_STATE",
      `the device key is behind ${parsed.scheme}: URI; mutual TLS from the agent needs a file key (enroll with a fresh key)`,
    );
  }
  return readFileSync(parsed.path, "utf8");
}

const pems = (text: string): X509Certificate[] =>
  (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new X509Certificate(p),
  );

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

export async function obtainRos2Enclave(o: Ros2EnclaveOptions): Promise<Ros2EnclaveOutcome> {
  // Checked before a key is made or the server asked (writeFleetEnclave checks again when writing).
  if (!o.replace && existsSync(enclaveDir(o.keystore, o.enclave))) {
    fail(
      "FR_ROS2_ENCLAVE_EXISTS",
      `enclave ${o.enclave} already exists in ${o.keystore}; pass --replace to renew it`,
    );
  }
  const cfg = await readConfig(o.identity);
  const pair = await readPair(o.identity);
  const clientKey = clientKeyOf(pair);
  createPrivateKey(clientKey); // an unreadable key fails here, before a key is made in a token
  const server = o.server ?? cfg.server;
  const caFile = o.caCert ?? cfg.caCert;
  const keys = o.keys ?? createKeyManager();
  try {
    const algorithm = o.keyAlgorithm ?? "ecdsa-p256";
    let signer: Signer;
    let key: FleetEnclaveBundle["key"];
    if (o.keyUri) {
      if (!o.keyUri.startsWith("pkcs11:"))
        fail(
          "FR_VALIDATION",
          "--key takes a pkcs11: URI; without it the enclave key is made in software (key.pem)",
        );
      signer = await keys.generate(o.keyUri, algorithm);
      // Signer.uri has any pin-value removed: a PIN never lands in the keystore (use pin-source).
      key = { name: "key.p11", content: signer.uri };
    } else {
      const k = generateSoftwareKey(algorithm);
      signer = k.signer;
      key = { name: "key.pem", content: k.pem };
    }
    const csr = await buildDeviceCsr(signer);
    const res = dataOf(
      await postJson(
        {
          server,
          ...(caFile ? { ca: readFileSync(caFile) } : {}),
          clientCert: pair.certPem,
          clientKey,
        },
        "ros2/enclave",
        { enclave: o.enclave, csr },
      ),
    );
    const text = (k: string): string =>
      typeof res[k] === "string"
        ? (res[k] as string)
        : fail("FR_AGENT_STATE", `the server's answer has no ${k}`);
    let bundle: FleetEnclaveBundle = {
      enclave: text("enclave"),
      certificate: text("certificate"),
      key,
      identityCa: text("identity_ca"),
      permissionsCa: text("permissions_ca"),
      identityCaChain: strings(res.identity_ca_chain),
      permissionsCaChain: strings(res.permissions_ca_chain),
      governanceXml: text("governance_xml"),
      governanceP7s: text("governance_p7s"),
      permissionsXml: text("permissions_xml"),
      permissionsP7s: text("permissions_p7s"),
    };
    // The CRL goes into the enclave with everything else, so a revoked peer is refused from the first start.
    const crl = await fetchRos2Crl(server, caFile ? readFileSync(caFile) : undefined);
    await checkRos2Crl(crl, bundle.identityCa);
    bundle = { ...bundle, crl };
    if (bundle.enclave !== o.enclave)
      fail("FR_AGENT_STATE", `the server answered for ${bundle.enclave}, not ${o.enclave}`);
    // The fleet root is the last certificate of the chain the device got at enrollment.
    const chain = pems(pair.chainPem);
    checkFleetEnclave(bundle, signer.publicKey, chain.slice(-1));
    const dir = await writeFleetEnclave(o.keystore, bundle, { replace: o.replace ?? false });
    return {
      deviceId: String(res.device_id),
      enclave: bundle.enclave,
      dir,
      policy: String(res.policy),
      serial: String(res.serial_number),
      notAfter: new Date(Number(res.expiration) * 1000).toISOString(),
      key: key.name,
    };
  } finally {
    if (!o.keys) await keys.close();
  }
}
