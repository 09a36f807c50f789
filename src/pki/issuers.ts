/**
 * Issuers: CA certificates this server signs with, each with a key behind a key URI (software keys
 * sealed by the barrier under the data dir, or pkcs11:). Several may exist; one is the default. An
 * intermediate is first a pending row (key + CSR) until `setSigned` brings its certificate. Loaded issuers
 * hold an open Signer and a precomputed issuance template, so issuing costs no lookup.
 */
import { X509Certificate, randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Kysely } from "kysely";
import {
  type CertificateParts,
  type DnAttribute,
  type IssuanceTemplate,
  type OcspHash,
  buildCertificate,
  certificateParts,
  createIssuanceTemplate,
  encodeName,
  keyHash,
  parseCsr,
  randomSerial,
  serialHex,
  verifyCsrSignature,
} from "../crypto/index.js";
import { FleetError, isFleetError } from "../errors/index.js";
import type { KeyAlgorithm, KeyManager, KeyProtector, Signer } from "../keys/index.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/clock.js";
import { createHash } from "node:crypto";
import { buildCsr } from "./csr-build.js";
import type { PkiTables } from "./migrations.js";

export interface Issuer {
  readonly id: string;
  readonly name: string;
  readonly certificate: Buffer;
  /** Parents up to the root (DER), without this issuer's own certificate. */
  readonly chain: readonly Buffer[];
  readonly parts: CertificateParts;
  /** The subjectKeyIdentifier (the AKI of what it signs). */
  readonly keyId: Uint8Array;
  readonly notAfter: number;
  readonly signer: Signer;
  readonly template: IssuanceTemplate;
  /** Delegated OCSP responder (RFC 6960 4.2.2.2), when one was made. */
  readonly ocsp: { readonly signer: Signer; readonly certificate: Buffer } | undefined;
  /** CertID hashes of this issuer per hash algorithm (RFC 6960 4.1.1), for OCSP lookups. */
  readonly certIdHashes: ReadonlyMap<OcspHash, { readonly name: string; readonly key: string }>;
}

export interface IssuerSummary {
  readonly issuer_id: string;
  readonly issuer_name: string;
  readonly is_default: boolean;
  readonly pending: boolean;
}

export interface IssuerDeps {
  readonly store: Store;
  readonly keys: KeyManager;
  readonly protector: KeyProtector;
  readonly clock: Clock;
  readonly dataDir: string;
  /** Base URL for CRL DP, OCSP and caIssuers URLs (no trailing slash). */
  readonly baseUrl: string;
}

export interface CaSpec {
  readonly subject: DnAttribute[];
  readonly name?: string | undefined;
  readonly keyRef?: string | undefined;
  readonly algorithm: KeyAlgorithm;
  readonly ttlSeconds: number;
  readonly pathLen?: number | undefined;
}

const YEAR = 365 * 24 * 3600;
const HASHES: readonly OcspHash[] = ["sha1", "sha256", "sha384", "sha512"];

export class IssuerRegistry {
  private loaded = new Map<string, Issuer>();
  private defaultId: string | undefined;

  constructor(private readonly d: IssuerDeps) {}

  private get t() {
    return this.d.store.db.withTables<PkiTables>();
  }

  /** (Re)loads every signed issuer and opens its key; called at unseal and after every change. */
  async reload(): Promise<void> {
    const rows = await this.t
      .selectFrom("pki_issuer")
      .selectAll()
      .where("certificate", "is not", null)
      .execute();
    const next = new Map<string, Issuer>();
    let def: string | undefined;
    for (const row of rows) {
      const old = this.loaded.get(row.id);
      // An issuer's certificate never changes once signed; only its OCSP delegate can.
      const same = old && (old.ocsp?.certificate.length ?? 0) === (row.ocsp_certificate?.length ?? 0);
      const issuer = same ? old : await this.materialize(row);
      next.set(row.id, issuer);
      if (row.is_default === 1) def = row.id;
    }
    this.loaded = next;
    this.defaultId = def;
  }

  clear(): void {
    this.loaded.clear();
    this.defaultId = undefined;
  }

  private async materialize(row: PkiTables["pki_issuer"]): Promise<Issuer> {
    const certificate = Buffer.from(row.certificate as Uint8Array);
    const signer = await this.d.keys.open(await this.unsealUri(row.id, row.key_uri));
    const parts = certificateParts(certificate);
    const keyId = parts.subjectKeyId ?? createHash("sha1").update(parts.spki).digest();
    const template = createIssuanceTemplate(
      {
        certificate,
        crlUrls: [`${this.d.baseUrl}/v1/pki/issuer/${row.id}/crl/der`],
        ocspUrls: [`${this.d.baseUrl}/v1/pki/ocsp`],
        caIssuersUrls: [`${this.d.baseUrl}/v1/pki/issuer/${row.id}/der`],
      },
      signer,
    );
    const certIdHashes = new Map<OcspHash, { name: string; key: string }>();
    for (const h of HASHES) {
      certIdHashes.set(h, {
        name: createHash(h).update(parts.subject).digest("hex"),
        key: keyHash(parts.spki, h).toString("hex"),
      });
    }
    let ocsp: Issuer["ocsp"];
    if (row.ocsp_certificate && row.ocsp_key_uri) {
      ocsp = {
        certificate: Buffer.from(row.ocsp_certificate),
        signer: await this.d.keys.open(await this.unsealUri(row.id, row.ocsp_key_uri, "ocsp-key")),
      };
    }
    return {
      id: row.id,
      name: row.name,
      certificate,
      chain: splitDerList(row.chain),
      parts,
      keyId,
      notAfter: Number(row.not_after),
      signer,
      template,
      ocsp,
      certIdHashes,
    };
  }

  private async sealUri(id: string, uri: string, what = "key"): Promise<Buffer> {
    return Buffer.from(await this.d.protector.encrypt(`pki_issuer/${id}/${what}`, Buffer.from(uri)));
  }

  private async unsealUri(id: string, sealed: Uint8Array, what = "key"): Promise<string> {
    return Buffer.from(await this.d.protector.decrypt(`pki_issuer/${id}/${what}`, sealed)).toString();
  }

  /** `ref` is an issuer id, an issuer name, or "default". */
  resolve(ref = "default"): Issuer {
    const id = ref === "default" ? this.defaultId : ref;
    const hit = (id && this.loaded.get(id)) || [...this.loaded.values()].find((i) => i.name === ref);
    if (hit) return hit;
    if (ref === "default")
      throw new FleetError("FR_PKI_NO_ISSUER", "there is no default issuer; run `fleetroot ca init`");
    throw new FleetError(
      "FR_PKI_ISSUER_NOT_FOUND",
      `no issuer "${ref}" (give an issuer id, name or "default")`,
    );
  }

  isDefault(issuer: Issuer): boolean {
    return issuer.id === this.defaultId;
  }

  all(): Issuer[] {
    return [...this.loaded.values()];
  }

  async list(): Promise<IssuerSummary[]> {
    const rows = await this.t
      .selectFrom("pki_issuer")
      .select(["id", "name", "is_default", "certificate"])
      .orderBy("created_at")
      .execute();
    return rows.map((r) => ({
      issuer_id: r.id,
      issuer_name: r.name,
      is_default: r.is_default === 1,
      pending: !r.certificate,
    }));
  }

  /**
   * Runs `use` with the key at keyRef, opened, or generated (at keyRef, or sealed under the data dir) when
   * there is none. A key generated here is removed again when `use` fails (it stores what names the key),
   * and another request naming the same URI waits until then (KeyManager.settled).
   */
  private async withKey<T>(
    id: string,
    spec: CaSpec,
    what: string,
    use: (uri: string, signer: Signer) => Promise<T>,
  ): Promise<T> {
    const uri = spec.keyRef ?? `file:${join(this.d.dataDir, "pki", `${what}-${id}.key`)}`;
    await this.d.keys.settled(uri);
    const existing = await this.d.keys.open(uri).catch((e: unknown) => {
      if (isFleetError(e) && e.code === "FR_KEY_NOT_FOUND") return undefined;
      throw e;
    });
    if (existing) return use(uri, existing);
    const key = await this.d.keys.generateProvisional(uri, spec.algorithm);
    try {
      const result = await use(uri, key.signer);
      key.keep();
      return result;
    } catch (e) {
      await key.discard();
      throw e;
    }
  }

  private async checkName(name: string): Promise<void> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name) || name === "default")
      throw new FleetError(
        "FR_VALIDATION",
        `issuer_name "${name}" must be 1-64 letters, digits, ".", "_" or "-" and not "default"`,
      );
    const row = await this.t
      .selectFrom("pki_issuer")
      .select("id")
      .where("name", "=", name)
      .executeTakeFirst();
    if (row) throw new FleetError("FR_CONFLICT", `an issuer named "${name}" already exists`);
  }

  /** A self-signed root. The first issuer becomes the default. */
  async createRoot(spec: CaSpec): Promise<Issuer> {
    const id = randomUUID();
    const name = spec.name ?? `root-${id.slice(0, 8)}`;
    await this.checkName(name);
    // Refuse a bad subject or validity before a key is generated, so a refusal leaves no key behind.
    encodeName(spec.subject);
    const now = this.d.clock.now().getTime();
    const notAfter = validityEnd(now, spec.ttlSeconds || 10 * YEAR);
    await this.withKey(id, spec, "root", async (uri, signer) => {
      const certificate = await buildCertificate(
        {
          serial: randomSerial(),
          subject: spec.subject,
          notBefore: new Date(now - 60_000),
          notAfter,
          publicKey: signer.publicKey,
          ca: spec.pathLen === undefined ? {} : { pathLen: spec.pathLen },
        },
        signer,
      );
      await this.insert(id, name, uri, signer, { certificate, chain: [], csr: undefined });
    });
    await this.reload();
    return this.resolve(id);
  }

  /** A pending intermediate: key and CSR now, certificate later through `setSigned`. */
  async createIntermediateCsr(spec: CaSpec): Promise<{ id: string; name: string; csr: Buffer }> {
    const id = randomUUID();
    const name = spec.name ?? `intermediate-${id.slice(0, 8)}`;
    await this.checkName(name);
    encodeName(spec.subject); // before the key, as for roots
    return this.withKey(id, spec, "intermediate", async (uri, signer) => {
      const csr = await buildCsr(spec.subject, signer);
      await this.insert(id, name, uri, signer, { certificate: undefined, chain: [], csr });
      return { id, name, csr };
    });
  }

  private async insert(
    id: string,
    name: string,
    uri: string,
    signer: Signer,
    c: { certificate: Buffer | undefined; chain: Buffer[]; csr: Buffer | undefined },
  ): Promise<void> {
    const sealed = await this.sealUri(id, uri);
    const now = this.d.clock.now().getTime();
    await this.d.store.transaction(async (trx) => {
      const t = trx.withTables<PkiTables>();
      const hasDefault = await defaultExists(t);
      await t
        .insertInto("pki_issuer")
        .values({
          id,
          name,
          key_uri: sealed,
          public_key: Buffer.from(signer.publicKey),
          certificate: c.certificate ?? null,
          chain: c.chain.length ? Buffer.concat(c.chain) : null,
          csr: c.csr ?? null,
          not_after: c.certificate ? Date.parse(new X509Certificate(c.certificate).validTo) : null,
          is_default: c.certificate && !hasDefault ? 1 : 0,
          crl_number: 0,
          ocsp_key_uri: null,
          ocsp_certificate: null,
          created_at: now,
        })
        .execute();
    });
  }

  /**
   * Imports a signed intermediate (PEM bundle: the certificate, then optionally its parents). The
   * certificate must carry the key of a pending intermediate, be a CA, and verify under the next one.
   */
  async setSigned(bundle: Buffer[]): Promise<Issuer> {
    const [leaf, ...chain] = bundle;
    if (!leaf) throw new FleetError("FR_VALIDATION", "certificate is empty");
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(leaf);
    } catch (e) {
      throw new FleetError("FR_PKI_ISSUER_INVALID", "the certificate cannot be parsed", { cause: e });
    }
    if (!cert.ca)
      throw new FleetError(
        "FR_PKI_ISSUER_INVALID",
        "the certificate is not a CA certificate (basicConstraints cA is not set)",
      );
    const parent = chain[0];
    if (parent) {
      const p = new X509Certificate(parent);
      if (!cert.checkIssued(p) || !cert.verify(p.publicKey))
        throw new FleetError(
          "FR_PKI_ISSUER_INVALID",
          "the certificate is not signed by the next certificate in the bundle",
        );
    }
    const spki = certificateParts(leaf).spki;
    const pending = await this.t
      .selectFrom("pki_issuer")
      .select(["id", "public_key"])
      .where("certificate", "is", null)
      .execute();
    const match = pending.find((r) => Buffer.from(r.public_key).equals(Buffer.from(spki)));
    if (!match)
      throw new FleetError(
        "FR_PKI_ISSUER_INVALID",
        "no pending intermediate holds this certificate's key; make one with `fleetroot ca intermediate csr` " +
          "(API: POST pki/intermediate/generate/internal) and have that CSR signed",
      );
    await this.d.store.transaction(async (trx) => {
      const t = trx.withTables<PkiTables>();
      const hasDefault = await defaultExists(t);
      await t
        .updateTable("pki_issuer")
        .set({
          certificate: leaf,
          chain: chain.length ? Buffer.concat(chain) : null,
          csr: null,
          not_after: Date.parse(cert.validTo),
          is_default: hasDefault ? 0 : 1,
        })
        .where("id", "=", match.id)
        .execute();
    });
    await this.reload();
    return this.resolve(match.id);
  }

  /** Signs an intermediate CA's CSR with an issuer (root/sign-intermediate); the subject is the CSR's or `subject`. */
  async signIntermediate(
    issuer: Issuer,
    csrInput: string | Buffer,
    opts: { subject?: DnAttribute[] | undefined; ttlSeconds: number; pathLen?: number | undefined },
  ): Promise<{ der: Buffer; serial: string }> {
    const csr = parseCsr(csrInput);
    verifyCsrSignature(csr);
    const pathLen = opts.pathLen ?? 0;
    assertCanSignCa(issuer, pathLen);
    const now = this.d.clock.now().getTime();
    const notAfter = Math.min(now + (opts.ttlSeconds || 5 * YEAR) * 1000, issuer.notAfter);
    const serial = randomSerial();
    const der = await issuer.template.issue({
      serial,
      subject: opts.subject ?? csr.subject.der,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(notAfter),
      publicKey: csr.publicKey,
      ca: { pathLen },
    });
    return { der, serial: serialHex(serial) };
  }

  async setDefault(ref: string): Promise<Issuer> {
    const issuer = this.resolve(ref);
    await this.d.store.transaction(async (trx) => {
      const t = trx.withTables<PkiTables>();
      await t.updateTable("pki_issuer").set({ is_default: 0 }).where("is_default", "=", 1).execute();
      await t.updateTable("pki_issuer").set({ is_default: 1 }).where("id", "=", issuer.id).execute();
    });
    await this.reload();
    return this.resolve(issuer.id);
  }

  /**
   * Makes a delegated OCSP signing certificate for `issuer` (EKU ocspSigning, id-pkix-ocsp-nocheck,
   * RFC 6960 4.2.2.2): OCSP responses are then signed by that key instead of the CA key.
   */
  async createOcspSigner(issuer: Issuer, keyRef: string | undefined, ttlSeconds: number): Promise<Issuer> {
    const spec = { subject: [], keyRef, algorithm: "ecdsa-p256" as const, ttlSeconds };
    await this.withKey(issuer.id, spec, "ocsp", async (uri, signer) => {
      const now = this.d.clock.now().getTime();
      const certificate = await issuer.template.issue({
        serial: randomSerial(),
        subject: [{ type: "CN", value: `${issuer.name} OCSP responder`.slice(0, 64) }],
        notBefore: new Date(now - 60_000),
        notAfter: new Date(Math.min(now + (ttlSeconds || 30 * 86400) * 1000, issuer.notAfter)),
        publicKey: signer.publicKey,
        keyUsage: ["digitalSignature"],
        extKeyUsage: ["ocspSigning"],
        ocspNoCheck: true,
      });
      await this.t
        .updateTable("pki_issuer")
        .set({ ocsp_key_uri: await this.sealUri(issuer.id, uri, "ocsp-key"), ocsp_certificate: certificate })
        .where("id", "=", issuer.id)
        .execute();
    });
    await this.reload();
    return this.resolve(issuer.id);
  }

  /** Next CRL number for an issuer (complete and delta CRLs share the sequence, RFC 5280 5.2.4). */
  async nextCrlNumber(issuerId: string): Promise<number> {
    const row = await this.t
      .updateTable("pki_issuer")
      .set((eb) => ({ crl_number: eb("crl_number", "+", 1) }))
      .where("id", "=", issuerId)
      .returning("crl_number")
      .executeTakeFirstOrThrow();
    return Number(row.crl_number);
  }
}

/** The end of a validity of `ttlSeconds` from `now`; FR_VALIDATION when no certificate can encode it. */
function validityEnd(now: number, ttlSeconds: number): Date {
  const end = new Date(now + ttlSeconds * 1000);
  if (Number.isNaN(end.getTime()) || end.getUTCFullYear() > 9999)
    throw new FleetError("FR_VALIDATION", `ttl ${ttlSeconds}s would end after the year 9999`);
  return end;
}

/** Splits concatenated DER certificates. */
export function splitDerList(blob: Uint8Array | null): Buffer[] {
  if (!blob) return [];
  const buf = Buffer.from(blob);
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    const lenByte = buf[off + 1] ?? 0;
    let len = lenByte;
    let head = 2;
    if (lenByte & 0x80) {
      const n = lenByte & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (buf[off + 2 + i] ?? 0);
      head = 2 + n;
    }
    out.push(buf.subarray(off, off + head + len));
    off += head + len;
  }
  return out;
}

/** Whether some issuer is the default already (a first signed issuer becomes it). */
async function defaultExists(t: Kysely<PkiTables>): Promise<boolean> {
  return (
    (await t.selectFrom("pki_issuer").select("id").where("is_default", "=", 1).executeTakeFirst()) !==
    undefined
  );
}

/**
 * Throws unless `issuer` may sign a CA certificate with `pathLen`. RFC 5280 6.1.4 (l)(m): below an issuer
 * with pathLenConstraint n, a CA may allow at most n - 1 more; with n = 0 no validator would accept
 * anything the new CA issues, so it is refused rather than signed. Callers that make a key for the new CA
 * check this first, so a refusal leaves no key behind.
 */
export function assertCanSignCa(issuer: Issuer, pathLen: number): void {
  const limit = issuer.parts.pathLen;
  if (limit === 0)
    throw new FleetError(
      "FR_PKI_ISSUER_INVALID",
      `issuer "${issuer.name}" has pathLen 0 and may not sign CA certificates; sign with an issuer above it`,
    );
  if (limit !== undefined && pathLen > limit - 1)
    throw new FleetError(
      "FR_VALIDATION",
      `max_path_length ${pathLen} is too large: issuer "${issuer.name}" has pathLen ${limit}, so at most ${limit - 1}`,
    );
}
