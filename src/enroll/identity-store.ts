/**
 * What operators register ahead of enrollment: device public keys (registered-key), PSA attestation
 * keys by instance id (psa), and manufacturer CAs with their optional CRL (x509). All public material.
 */
import { X509Certificate, createHash, createPublicKey } from "node:crypto";
import type { Kysely } from "kysely";
import { FleetError, fail, isFleetError } from "../errors/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import { ACCEPTED_KEYS, type KeyUse, readDeviceKey } from "./device-key.js";
import type { EnrollTables } from "./migrations.js";
import { crlSignedBy, parseCert, parseCrl } from "./x509-path.js";

export const spkiFingerprint = (spki: Uint8Array): string => createHash("sha256").update(spki).digest("hex");

/**
 * A PEM public key or certificate, or a base64 SubjectPublicKeyInfo → DER; anything else, and any key
 * `use` does not accept (so it could be registered but never enroll), is FR_VALIDATION.
 */
export function readPublicKey(input: unknown, use: KeyUse, field = "public_key"): Buffer {
  if (typeof input !== "string" || input.length === 0 || input.length > 16 * 1024) {
    fail("FR_VALIDATION", `${field} must be a PEM public key (-----BEGIN PUBLIC KEY-----)`);
  }
  // createPublicKey derives the public half of a private key: refuse one rather than accept it silently.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(input)) {
    fail(
      "FR_VALIDATION",
      `${field} holds a private key; send only the public key (openssl pkey -pubout) and keep the private key on the device`,
    );
  }
  let spki: Buffer;
  try {
    const key = input.includes("-----BEGIN")
      ? createPublicKey(input)
      : createPublicKey({ key: Buffer.from(input, "base64"), format: "der", type: "spki" });
    // The export keeps an EC key's parameters as they were encoded (named or explicit).
    spki = key.export({ format: "der", type: "spki" });
  } catch {
    return fail("FR_VALIDATION", `${field} is not a readable public key`);
  }
  const k = readDeviceKey(spki, use);
  if (k.refused !== undefined) {
    const what = use === "certify" ? "could never enroll" : "cannot sign PSA attestation tokens";
    fail("FR_VALIDATION", `${field} is ${k.refused}, which ${what}; use ${ACCEPTED_KEYS[use]}`);
  }
  return spki;
}

/** The x509 parsers speak to enrolling devices (FR_ENROLL_MALFORMED); an operator's bad upload is FR_VALIDATION. */
function operatorInput<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (isFleetError(e) && e.code === "FR_ENROLL_MALFORMED")
      throw new FleetError("FR_VALIDATION", e.detail, { cause: e });
    throw e;
  }
}

export interface Manufacturer {
  readonly name: string;
  readonly certificate: Buffer;
  readonly crl: Buffer | undefined;
}

export class IdentityStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  db(trx?: Kysely<object>): Kysely<EnrollTables> {
    return (trx ?? this.store.db).withTables<EnrollTables>();
  }

  // --- registered keys ---

  async registerKey(
    provisioner: string,
    deviceId: string,
    spki: Buffer,
    trx?: Kysely<object>,
  ): Promise<string> {
    const fingerprint = spkiFingerprint(spki);
    const db = this.db(trx);
    if (
      await db
        .selectFrom("fleet_registered_key")
        .select("fingerprint")
        .where("fingerprint", "=", fingerprint)
        .executeTakeFirst()
    ) {
      fail("FR_CONFLICT", "this public key is already registered");
    }
    await db
      .insertInto("fleet_registered_key")
      .values({ fingerprint, provisioner, device_id: deviceId, spki, created_at: this.clock.now().getTime() })
      .execute();
    return fingerprint;
  }

  async registeredKey(
    spki: Uint8Array,
  ): Promise<{ provisioner: string; deviceId: string; fingerprint: string } | undefined> {
    const fingerprint = spkiFingerprint(spki);
    const row = await this.db()
      .selectFrom("fleet_registered_key")
      .selectAll()
      .where("fingerprint", "=", fingerprint)
      .executeTakeFirst();
    return row ? { provisioner: row.provisioner, deviceId: row.device_id, fingerprint } : undefined;
  }

  // --- PSA attestation keys ---

  async registerPsaKey(
    provisioner: string,
    instanceId: string,
    deviceId: string,
    spki: Buffer,
    trx?: Kysely<object>,
  ): Promise<void> {
    const db = this.db(trx);
    if (
      await db
        .selectFrom("fleet_psa_key")
        .select("instance_id")
        .where("instance_id", "=", instanceId)
        .executeTakeFirst()
    ) {
      fail("FR_CONFLICT", `instance id ${instanceId} is already registered`);
    }
    await db
      .insertInto("fleet_psa_key")
      .values({
        instance_id: instanceId,
        provisioner,
        device_id: deviceId,
        spki,
        created_at: this.clock.now().getTime(),
      })
      .execute();
  }

  async psaKey(
    instanceId: string,
  ): Promise<{ provisioner: string; deviceId: string; spki: Buffer } | undefined> {
    const row = await this.db()
      .selectFrom("fleet_psa_key")
      .selectAll()
      .where("instance_id", "=", instanceId)
      .executeTakeFirst();
    return row
      ? { provisioner: row.provisioner, deviceId: row.device_id, spki: Buffer.from(row.spki) }
      : undefined;
  }

  // --- manufacturers ---

  /** Registers or replaces a manufacturer CA (must be a CA certificate) and its optional CRL. */
  async putManufacturer(name: string, certificate: Buffer, crl: Buffer | undefined): Promise<Manufacturer> {
    const cert = operatorInput(() => parseCert(certificate, "the manufacturer CA certificate"));
    if (!cert.x509.ca)
      fail("FR_VALIDATION", "the manufacturer certificate is not a CA certificate (basicConstraints cA)");
    if (crl) {
      operatorInput(() => parseCrl(crl));
      if (!crlSignedBy(crl, cert.x509)) fail("FR_VALIDATION", "the CRL is not signed by the manufacturer CA");
    }
    const now = this.clock.now().getTime();
    const db = this.db();
    const exists = await db
      .selectFrom("fleet_manufacturer")
      .select("name")
      .where("name", "=", name)
      .executeTakeFirst();
    if (exists) {
      await db
        .updateTable("fleet_manufacturer")
        .set({ certificate, crl: crl ?? null, updated_at: now })
        .where("name", "=", name)
        .execute();
    } else {
      await db
        .insertInto("fleet_manufacturer")
        .values({ name, certificate, crl: crl ?? null, created_at: now, updated_at: now })
        .execute();
    }
    return { name, certificate, crl };
  }

  async manufacturer(name: string): Promise<Manufacturer | undefined> {
    const row = await this.db()
      .selectFrom("fleet_manufacturer")
      .selectAll()
      .where("name", "=", name)
      .executeTakeFirst();
    return row
      ? {
          name: row.name,
          certificate: Buffer.from(row.certificate),
          crl: row.crl ? Buffer.from(row.crl) : undefined,
        }
      : undefined;
  }

  async manufacturers(): Promise<string[]> {
    return (await this.db().selectFrom("fleet_manufacturer").select("name").orderBy("name").execute()).map(
      (r) => r.name,
    );
  }

  async deleteManufacturer(name: string): Promise<void> {
    await this.db().deleteFrom("fleet_manufacturer").where("name", "=", name).execute();
  }

  static describe(m: Manufacturer): Record<string, unknown> {
    const x = new X509Certificate(m.certificate);
    return {
      name: m.name,
      subject: x.subject.replace(/\n/g, ", "),
      not_after: x.validTo,
      fingerprint: x.fingerprint256,
      crl: !!m.crl,
    };
  }
}
