import "reflect-metadata";
import type { X509Certificate } from "node:crypto";
import * as px509 from "@peculiar/x509";
import type { Kysely } from "kysely";
import { fail } from "../../errors/index.js";
import type { Store } from "../../store/index.js";
import type { Clock } from "../../util/clock.js";
import type { SecretsTables } from "../migrations.js";

const MAX_CRL_BYTES = 8 * 1024 * 1024;

/** Serial numbers compared as lowercase hex without leading zeros. */
const normSerial = (hex: string) => hex.toLowerCase().replace(/^0+(?=.)/, "");

/** CRLs configured for cert login (Vault's auth/cert/crls/:name), checked on every login. */
export class CertCrls {
  private readonly db: Kysely<SecretsTables>;

  constructor(
    store: Store,
    private readonly clock: Clock,
  ) {
    this.db = store.db.withTables<SecretsTables>();
  }

  /** Parses (PEM or DER) and stores a CRL; returns the serials it lists. */
  async put(name: string, input: string | Buffer): Promise<string[]> {
    const crl = parseCrl(input);
    const der = Buffer.from(crl.rawData);
    if (der.length > MAX_CRL_BYTES) fail("FR_VALIDATION", `the CRL is larger than ${MAX_CRL_BYTES} bytes`);
    const now = this.clock.now().getTime();
    await this.db
      .insertInto("secrets_cert_crl")
      .values({ name, der, updated_at: now })
      .onConflict((oc) => oc.column("name").doUpdateSet({ der, updated_at: now }))
      .execute();
    return crl.entries.map((e) => normSerial(e.serialNumber));
  }

  async get(name: string): Promise<string[] | undefined> {
    const row = await this.db
      .selectFrom("secrets_cert_crl")
      .select("der")
      .where("name", "=", name)
      .executeTakeFirst();
    return row ? parseCrl(row.der).entries.map((e) => normSerial(e.serialNumber)) : undefined;
  }

  async delete(name: string): Promise<void> {
    await this.db.deleteFrom("secrets_cert_crl").where("name", "=", name).execute();
  }

  /**
   * Whether a CRL signed by `issuer` lists `cert` (RFC 5280 6.3, simplified: full CRLs, signature
   * checked against the issuer that signed the certificate, so a CRL from another CA cannot revoke it).
   */
  async isRevoked(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
    const rows = await this.db.selectFrom("secrets_cert_crl").select("der").execute();
    if (rows.length === 0) return false;
    const issuerCert = new px509.X509Certificate(new Uint8Array(issuer.raw));
    const serial = normSerial(cert.serialNumber);
    for (const row of rows) {
      const crl = parseCrl(row.der);
      if (!crl.entries.some((e) => normSerial(e.serialNumber) === serial)) continue;
      if (await crl.verify({ publicKey: issuerCert }).catch(() => false)) return true;
    }
    return false;
  }
}

function parseCrl(input: string | Uint8Array): px509.X509Crl {
  try {
    if (typeof input === "string") {
      const pem = input
        .replace("-----BEGIN CRL-----", "-----BEGIN X509 CRL-----")
        .replace("-----END CRL-----", "-----END X509 CRL-----");
      return new px509.X509Crl(pem);
    }
    return new px509.X509Crl(new Uint8Array(input));
  } catch (e) {
    fail("FR_VALIDATION", `the CRL cannot be parsed: ${(e as Error).message}`);
  }
}
