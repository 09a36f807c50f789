/**
 * The offline half of the root ceremony (`fleetroot ca root create`, `fleetroot ca root sign-intermediate`):
 * runs on the offline machine, on files and key URIs only, never talking to a server. Software keys are
 * plain PKCS#8 files (mode 0600) there; use a pkcs11: URI to keep the root key in an HSM.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import {
  buildCertificate,
  certificateParts,
  fromPem,
  parseCsr,
  randomSerial,
  toPem,
  verifyCsrSignature,
} from "../../crypto/index.js";
import { FleetError, isFleetError } from "../../errors/index.js";
import { type KeyAlgorithm, type Signer, createKeyManager, keyAlgorithms } from "../../keys/index.js";
import { parseDuration } from "../../util/duration.js";
import { CliError, checkOutputPath, writeOutputFile } from "../output.js";

function readText(file: string, what: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (e) {
    throw new CliError(
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

function emit(text: string, out: string | undefined): void {
  if (out) {
    writeOutputFile(out, text, "--out", { mode: 0o644 });
    process.stderr.write(`wrote ${out}\n`);
  } else process.stdout.write(text);
}

async function withKey<T>(
  uri: string,
  algorithm: KeyAlgorithm | undefined,
  fn: (s: Signer) => Promise<T>,
): Promise<T> {
  const keys = createKeyManager();
  try {
    let signer: Signer;
    try {
      signer = await keys.open(uri);
    } catch (e) {
      if (!(isFleetError(e) && e.code === "FR_KEY_NOT_FOUND" && algorithm)) throw e;
      signer = await keys.generate(uri, algorithm);
    }
    return await fn(signer);
  } finally {
    await keys.close();
  }
}

const LAST_ENCODABLE = Date.UTC(9999, 11, 31, 23, 59, 59);

/** --ttl in seconds, checked before any key is opened or generated: positive, ending by the year 9999. */
function ttlOption(text: string, now: number): number {
  let seconds: number;
  try {
    seconds = parseDuration(text, "--ttl");
  } catch (e) {
    if (isFleetError(e)) throw new CliError(e.detail ?? e.message, 2);
    throw e;
  }
  if (seconds <= 0) throw new CliError("--ttl must be longer than 0s", 2);
  if (now + seconds * 1000 > LAST_ENCODABLE)
    throw new CliError(`--ttl ${text} would end after the year 9999; give a shorter validity`, 2);
  return seconds;
}

function subject(cn: string, org?: string): { type: string; value: string }[] {
  return [...(org ? [{ type: "O", value: org }] : []), { type: "CN", value: cn }];
}

export function caOfflineCommands(root: Command): void {
  root
    .command("create")
    .description(
      "create a self-signed root CA offline: generates the key at --key if it does not exist (file: or pkcs11:)\n" +
        "and writes the root certificate (PEM) to --out or stdout",
    )
    .requiredOption("--key <uri>", "key URI of the root key (file:/path/root.key or pkcs11:…)")
    .requiredOption("--common-name <cn>", "the root's common name")
    .option("--organization <o>", "organization (O)")
    .option("--algorithm <alg>", `key algorithm when generating: ${keyAlgorithms.join(", ")}`, "ecdsa-p384")
    .option("--ttl <duration>", "validity", "87600h")
    .option("--out <file>", "write the certificate here instead of stdout")
    .action(async (o: Record<string, string>) => {
      if (!keyAlgorithms.includes(o.algorithm as KeyAlgorithm))
        throw new CliError(`--algorithm must be one of ${keyAlgorithms.join(", ")}`, 2);
      const now = Date.now();
      const ttl = ttlOption(o.ttl as string, now);
      // Before the key is generated: a bad --out must not leave a new key behind.
      if (o.out) checkOutputPath(o.out, "--out");
      const pem = await withKey(o.key as string, o.algorithm as KeyAlgorithm, async (signer) => {
        const der = await buildCertificate(
          {
            serial: randomSerial(),
            subject: subject(o.commonName as string, o.organization),
            notBefore: new Date(now - 60_000),
            notAfter: new Date(now + ttl * 1000),
            publicKey: signer.publicKey,
            ca: {},
          },
          signer,
        );
        return toPem(der, "CERTIFICATE");
      });
      emit(pem, o.out);
    });

  root
    .command("sign-intermediate")
    .description(
      "sign an intermediate CA's CSR (from `fleetroot ca intermediate csr`) with the offline root; writes the\n" +
        "intermediate certificate followed by the root (the bundle `ca intermediate set-signed` takes)",
    )
    .requiredOption("--key <uri>", "key URI of the root key")
    .requiredOption("--cert <file>", "the root certificate (PEM)")
    .requiredOption("--csr <file>", "the intermediate's CSR (PEM), - for stdin")
    .option("--ttl <duration>", "validity of the intermediate", "43800h")
    .option("--path-len <n>", "pathLenConstraint of the intermediate", "0")
    .option("--out <file>", "write the bundle here instead of stdout")
    .action(async (o: Record<string, string>) => {
      const rootDer = fromPem(readText(o.cert as string, "root certificate"), "CERTIFICATE").der;
      const csr = parseCsr(readText(o.csr as string, "CSR"));
      verifyCsrSignature(csr);
      const pathLen = Number(o.pathLen);
      if (!Number.isInteger(pathLen) || pathLen < 0)
        throw new CliError("--path-len must be a non-negative integer", 2);
      const rootNotAfter = rootValidTo(rootDer);
      const now = Date.now();
      const ttl = ttlOption(o.ttl as string, now);
      if (o.out) checkOutputPath(o.out, "--out");
      const pem = await withKey(o.key as string, undefined, async (signer) => {
        const der = await buildCertificate(
          {
            serial: randomSerial(),
            subject: csr.subject.der,
            notBefore: new Date(now - 60_000),
            notAfter: new Date(Math.min(now + ttl * 1000, rootNotAfter)),
            publicKey: csr.publicKey,
            ca: { pathLen },
            issuer: { certificate: rootDer },
          },
          signer,
        );
        return toPem(der, "CERTIFICATE") + toPem(rootDer, "CERTIFICATE");
      });
      emit(pem, o.out);
    });
}

function rootValidTo(der: Buffer): number {
  certificateParts(der); // structural check with a precise error first
  try {
    return Date.parse(new X509Certificate(der).validTo);
  } catch (e) {
    throw new FleetError("FR_DER_INVALID", "the root certificate cannot be read", { cause: e });
  }
}
