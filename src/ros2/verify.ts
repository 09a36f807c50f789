/**
 * `ros2 verify`: checks a keystore the way the DDS plugins will, before a robot finds out. For the CAs:
 * self-signed, in validity. For governance: signature by the permissions CA, content equal to
 * governance.xml. For each enclave: certificate issued by the identity CA (RFC 5280 6.1 for a one-level
 * path: signature, issuer name, validity), not on the keystore's CRL, private key matching (key.pem),
 * CA copies equal to the keystore's, governance.p7s and permissions.p7s verifying against the permissions
 * CA, permissions.xml equal to the signed content, and a grant whose subject_name is the certificate's.
 */
import crypto, { X509Certificate } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Element } from "@xmldom/xmldom";
import { FleetError } from "../errors/index.js";
import { exists } from "./files.js";
import { listEnclaves } from "./enclave.js";
import type { Ros2Keystore } from "./keystore.js";
import { ENCLAVES, PUBLIC, files } from "./layout.js";
import { verifySmime } from "./smime.js";
import { childElements, parseXml, textOf } from "./xml.js";

export interface VerifyProblem {
  /** The enclave, or undefined for the keystore itself. */
  readonly enclave?: string;
  readonly file: string;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly enclaves: number;
  readonly checks: number;
  readonly problems: readonly VerifyProblem[];
}

export async function verifyKeystore(ks: Ros2Keystore): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  let checks = 0;
  const now = ks.deps.clock.now().getTime();
  const check = async (enclave: string | undefined, file: string, fn: () => Promise<void> | void) => {
    checks++;
    try {
      await fn();
    } catch (e) {
      const message = e instanceof FleetError ? e.message : (e as Error).message;
      problems.push({ ...(enclave ? { enclave } : {}), file, message });
    }
  };
  const inValidity = (c: X509Certificate, what: string) => {
    if (Date.parse(c.validFrom) > now) throw new Error(`${what} is not valid before ${c.validFrom}`);
    if (Date.parse(c.validTo) < now) throw new Error(`${what} expired on ${c.validTo}`);
  };

  const idCa = await ks.identityCa();
  const permCa = await ks.permissionsCa();
  for (const [ca, file] of [
    [idCa.cert, files.identityCaCert],
    [permCa.cert, files.permissionsCaCert],
  ] as const) {
    await check(undefined, path.join(PUBLIC, file), () => {
      if (!ca.ca) throw new Error("the certificate is not a CA (basicConstraints cA is false)");
      if (!ca.checkIssued(ca) || !ca.verify(ca.publicKey))
        throw new Error("the CA certificate is not self-signed");
      inValidity(ca, "the CA certificate");
    });
  }
  let governanceSigned: string | undefined;
  await check(undefined, path.join(ENCLAVES, files.governanceP7s), async () => {
    const v = verifySmime(
      await fs.readFile(ks.path(ENCLAVES, files.governanceP7s), "utf8"),
      permCa.certDer,
      "governance.p7s",
    );
    governanceSigned = v.content;
    const xmlPath = ks.path(ENCLAVES, files.governanceXml);
    if ((await exists(xmlPath)) && normalize(await fs.readFile(xmlPath, "utf8")) !== normalize(v.content)) {
      throw new Error("governance.xml differs from the signed governance.p7s; re-sign it");
    }
  });
  const revoked = new Set(ks.state.revoked.map((r) => r.serial));

  const enclaves = await listEnclaves(ks);
  for (const e of enclaves) {
    const read = (f: string) => fs.readFile(path.join(e.dir, f), "utf8");
    let cert: X509Certificate | undefined;
    await check(e.name, files.cert, async () => {
      cert = new X509Certificate(await read(files.cert));
      if (!cert.checkIssued(idCa.cert))
        throw new Error(`the certificate's issuer is not the identity CA ("${cert.issuer}")`);
      if (!cert.verify(idCa.cert.publicKey))
        throw new Error("the certificate's signature does not verify under the identity CA");
      inValidity(cert, "the enclave certificate");
      if (revoked.has(e.serial)) throw new Error(`the certificate (serial ${e.serial}) is revoked`);
    });
    await check(e.name, e.key, async () => {
      if (e.key === "none") throw new Error("the enclave has neither key.pem nor key.p11");
      if (e.key === "key.p11") {
        if (!(await read(files.keyP11)).trim().startsWith("pkcs11:"))
          throw new Error("key.p11 does not hold a pkcs11: URI");
        return;
      }
      const pub = crypto.createPublicKey(crypto.createPrivateKey(await read(files.keyPem)));
      if (cert && !pub.equals(cert.publicKey)) throw new Error("key.pem is not the key of cert.pem");
    });
    for (const [file, ca] of [
      [files.identityCaCert, idCa],
      [files.permissionsCaCert, permCa],
    ] as const) {
      await check(e.name, file, async () => {
        if (!new X509Certificate(await read(file)).raw.equals(ca.cert.raw)) {
          throw new Error(`${file} is not the keystore's CA certificate`);
        }
      });
    }
    await check(e.name, files.governanceP7s, async () => {
      const v = verifySmime(await read(files.governanceP7s), permCa.certDer, "governance.p7s");
      if (governanceSigned !== undefined && normalize(v.content) !== normalize(governanceSigned)) {
        throw new Error("governance.p7s differs from the keystore's governance");
      }
    });
    await check(e.name, files.permissionsP7s, async () => {
      const v = verifySmime(await read(files.permissionsP7s), permCa.certDer, "permissions.p7s");
      if (normalize(await read(files.permissionsXml)) !== normalize(v.content)) {
        throw new Error("permissions.xml differs from the signed permissions.p7s");
      }
      const subjects = grantSubjects(v.content);
      if (cert && !subjects.some((s) => sameDn(s, cert?.subject ?? ""))) {
        throw new Error(
          `no grant's subject_name matches the certificate subject "${cert.subject}" (grants: ${subjects.join("; ")})`,
        );
      }
    });
  }
  return { ok: problems.length === 0, enclaves: enclaves.length, checks, problems };
}

function normalize(s: string): string {
  return s.replace(/\r\n/g, "\n").trimEnd();
}

function grantSubjects(xml: string): string[] {
  const doc = parseXml(xml, "permissions.xml");
  const out: string[] = [];
  const perms = childElements(doc.documentElement as Element).find((c) => c.localName === "permissions");
  for (const g of perms ? childElements(perms) : []) {
    const s = childElements(g).find((c) => c.localName === "subject_name");
    if (s) out.push(textOf(s, "permissions.xml"));
  }
  return out;
}

/** Compares DN strings attribute by attribute (`CN=a, O=b` vs Node's `CN=a\nO=b`), order-insensitively. */
function sameDn(a: string, b: string): boolean {
  const parse = (s: string) =>
    s
      .split(/[\n,]/)
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => {
        const i = p.indexOf("=");
        return `${p.slice(0, i).trim().toUpperCase()}=${p.slice(i + 1).trim()}`;
      })
      .sort()
      .join("\n");
  return parse(a) === parse(b);
}
