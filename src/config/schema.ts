import { isAbsolute } from "node:path";
import { z } from "zod";
import { parseDuration } from "../util/index.js";
import { sealKeyUriProblem } from "./seal-key.js";

/** host:port, IPv6 in brackets; port 0 asks the system for a free one. */
const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port, e.g. 127.0.0.1:8200")
  .refine((v) => Number(v.slice(v.lastIndexOf(":") + 1)) <= 65535, "the port must be 0 to 65535");

const keyUri = z.string().regex(/^(file|pkcs11|tpm):/, "must be a key URI (file:…, pkcs11:…)");

/**
 * A whole number. A fraction, or text that is not a number (FLEETROOT_AUDIT_CHECKPOINT_EVERY=1.5 stays text,
 * since only whole numbers convert), says so rather than "expected number, received string".
 */
const wholeNumber = () => {
  const error = (i: { code?: string; input?: unknown }) =>
    i.code === "invalid_type" ? `must be a whole number, not ${JSON.stringify(i.input)}` : undefined;
  return z.number({ error }).int({ error });
};

/**
 * A positive duration as the server reads it ("72h", "30m", "1h30m"), checked at boot rather than at first use.
 * A bare number (YAML `3600`, FLEETROOT_PKI_CRL_VALIDITY=3600) is seconds, as parseDuration reads it.
 */
const duration = z.preprocess(
  (v) => (typeof v === "number" && Number.isInteger(v) ? `${v}s` : v),
  z.string().refine((v) => {
    try {
      return parseDuration(v) > 0;
    } catch {
      return false;
    }
  }, "must be a positive duration like 30s, 15m, 1h or 7d (a bare number is seconds)"),
);

/**
 * A list of absolute paths, each of `what` (`example` shows one); an entry that is not absolute is shown as
 * given. From the environment the list is comma-separated (load.ts).
 */
const absolutePaths = (what: string, example: string) => {
  const entry = (i: { input: unknown }) =>
    `must be the absolute path of ${what}, not ${JSON.stringify(i.input)}`;
  return z.array(
    z
      .string({ error: (i) => (i.code === "invalid_type" ? entry(i) : undefined) })
      .refine((v) => isAbsolute(v) && !v.includes("\0"), { error: entry }),
    {
      error: (i) =>
        i.code === "invalid_type" ? `must be a list of absolute paths, such as [${example}]` : undefined,
    },
  );
};

/** tls.cert_file and tls.key_file go together: setting any tls key (client_ca_file too) needs both. */
const tlsPair = (i: { input: unknown }) =>
  i.input === undefined
    ? "is required once any tls key is set (tls.cert_file and tls.key_file name the server's PEM certificate chain and key)"
    : undefined;

export const sealSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("shamir") }),
  z.strictObject({
    type: z.literal("pkcs11"),
    key: z
      .string({ error: (i) => (i.input === undefined ? "is required with seal.type pkcs11" : undefined) })
      .startsWith("pkcs11:", "must be a pkcs11: URI")
      // Whatever init would refuse without reaching the HSM (a bad attribute, no token, no key, no PIN, a type
      // that cannot wrap) stops the start instead.
      .superRefine((uri, ctx) => {
        const problem = uri.startsWith("pkcs11:") ? sealKeyUriProblem(uri) : undefined;
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
  }),
  z.strictObject({ type: z.literal("dev") }),
]);

export const configSchema = z.strictObject({
  /** Address the HTTP API listens on. */
  listen: listenAddress.default("127.0.0.1:8200"),
  /** The URL clients and devices reach this server at (used in CRL/OCSP URLs); defaults from listen. */
  api_addr: z.url().optional(),
  tls: z
    .strictObject({
      cert_file: z.string({ error: tlsPair }).min(1),
      key_file: z.string({ error: tlsPair }).min(1),
      /** CA bundle for client certificates (mutual TLS for renewal and cert login). */
      client_ca_file: z.string().min(1).optional(),
    })
    .optional(),
  /** Directory for the SQLite database, the audit log and the audit key unless set otherwise. */
  data_dir: z.string().min(1).default("./data"),
  /** `sqlite:PATH` or `postgres://user@host:port/db`; default `sqlite:<data_dir>/fleetroot.db`. */
  storage: z
    .string()
    .regex(/^(sqlite:|postgres:\/\/|postgresql:\/\/)/, "must start with sqlite: or postgres://")
    .optional(),
  seal: sealSchema.default({ type: "shamir" }),
  /**
   * What a key URI in an API request (pki key_ref, the ROS 2 CA keys, TUF key uris) may name; URIs in this
   * file and the CLI's offline commands are not restricted. docs/configuration.md.
   */
  keys: z
    .strictObject({
      /** Directories under which a request's file: key may live; default `<data_dir>/keys`. */
      file_dirs: absolutePaths("a directory", "/var/lib/fleetroot/keys").optional(),
      /** Modules a request's pkcs11 module-path may name; default SoftHSM2 and FLEETROOT_PKCS11_MODULE. */
      pkcs11_modules: absolutePaths("a PKCS#11 module", "/usr/lib/softhsm/libsofthsm2.so").optional(),
    })
    .optional(),
  audit: z
    .strictObject({
      /** JSON Lines file; default `<data_dir>/audit.log`. */
      path: z.string().min(1).optional(),
      /** Sign a checkpoint every N entries (and on shutdown). */
      checkpoint_every: wholeNumber().min(1).max(1_000_000).default(1000),
      /**
       * Whether the reply to a request that changes nothing (GET, LIST, HEAD, read-only routes) waits for
       * its entry to be synced to disk. Off: the entry is written before the reply and synced by the next
       * group commit. Entries of requests that may change state, and security events, are always synced
       * before the reply.
       */
      sync_reads: z.boolean().default(false),
      /** Key that signs checkpoints; default `file:<data_dir>/audit-key.pem` (created on first start). */
      key: keyUri.optional(),
    })
    .default({ checkpoint_every: 1000, sync_reads: false }),
  limits: z
    .strictObject({
      max_body_bytes: wholeNumber()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024),
      unseal_per_minute: wholeNumber().min(1).default(60),
      login_per_minute: wholeNumber().min(1).default(120),
    })
    .default({ max_body_bytes: 1024 * 1024, unseal_per_minute: 60, login_per_minute: 120 }),
  /** PKI (src/pki): revocation timing and the URLs placed in certificates; docs/pki.md. */
  pki: z
    .strictObject({
      /** Base URL for the CRL distribution point, OCSP and caIssuers URLs; default api_addr. */
      base_url: z.url().optional(),
      /** Validity of a complete CRL (thisUpdate to nextUpdate), e.g. "72h". */
      crl_validity: duration.default("72h"),
      /** How often the complete CRL is rebuilt; it is always rebuilt before nextUpdate. */
      crl_rebuild_interval: duration.default("12h"),
      /** Validity of a delta CRL. */
      delta_crl_validity: duration.default("30m"),
      /** Validity of an OCSP response (thisUpdate to nextUpdate). */
      ocsp_validity: duration.default("1h"),
      /** Largest CSR accepted, in bytes. */
      max_csr_bytes: wholeNumber()
        .min(1024)
        .max(1024 * 1024)
        .default(64 * 1024),
      /**
       * Worker threads that parse and verify CSRs (key import and signature check), so issuance uses
       * more than one core; 0 keeps it on the event loop. Default: one per core beyond the first, at most 4.
       */
      csr_threads: wholeNumber().min(0).max(64).optional(),
    })
    .optional(),
  secrets: z
    .strictObject({
      /**
       * KV v2 keys kept opened in memory (metadata and recently read versions, in plaintext), checked
       * against the stored sealed metadata on every read; 0 opens every read afresh. Emptied on seal.
       */
      kv_cache_keys: wholeNumber().min(0).max(10_000_000).default(10_000),
    })
    .optional(),
  log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type Config = z.infer<typeof configSchema>;
export type SealConfig = z.infer<typeof sealSchema>;
