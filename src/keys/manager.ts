import { fail } from "../errors/index.js";
import type { BackendOptions, KeyBackend } from "./backend.js";
import fs from "node:fs/promises";
import { FileBackend, missingParentDirs } from "./file-backend.js";
import { Pkcs11Backend } from "./pkcs11/backend.js";
import {
  keyAlgorithms,
  type KeyAlgorithm,
  type KeyProtector,
  type KeyWrapper,
  type Signer,
  type WrapAlgorithm,
  wrapAlgorithms,
} from "./types.js";
import { type KeyUriScheme, type ParsedKeyUri, parseKeyUri, redactKeyUri } from "./uri.js";

/**
 * A key generated for a request that may still fail. One of `keep()` (the request succeeded) or `discard()`
 * (it failed: the key is removed if it is still this key, best effort) must be called; until then
 * `settled(uri)` waits.
 */
export interface ProvisionalKey {
  readonly signer: Signer;
  keep(): void;
  discard(): Promise<void>;
}

export interface KeyManager {
  /** Opens an existing key. */
  open(uri: string): Promise<Signer>;
  /** Creates a key; FR_KEY_EXISTS if one is already at the URI. */
  generate(uri: string, algorithm: KeyAlgorithm): Promise<Signer>;
  /** Opens an AES-256 or RSA key in a token for wrapping the seal's root key. */
  openWrapper(uri: string): Promise<KeyWrapper>;
  generateWrapper(uri: string, algorithm: WrapAlgorithm): Promise<KeyWrapper>;
  /**
   * Undoes a generate whose purpose failed: removes the signing key at `uri` (a `file:` key's file; a token's
   * private key and its public half) only if its public key is `publicKey` (SubjectPublicKeyInfo DER), so a
   * key that has since been replaced at that URI is left alone. Returns whether a key was removed; a URI
   * naming no key is false, not an error.
   */
  destroy(uri: string, publicKey: Uint8Array): Promise<boolean>;
  /**
   * generate() for a request that may fail after it: the key is the request's until it keeps or discards it
   * (ProvisionalKey); discard also removes the directories the generate of a `file:` key made, if empty.
   * Built on this manager's own generate and destroy.
   */
  generateProvisional(uri: string, algorithm: KeyAlgorithm): Promise<ProvisionalKey>;
  /**
   * Resolves once no provisional key at `uri` is pending. A request path that opens a key URI a client
   * named awaits it first, so it never opens a key another request is about to discard. Not awaited by
   * open() itself: the request holding a provisional key opens it too.
   */
  settled(uri: string): Promise<void>;
  /** Logs out of tokens and finalizes modules this manager opened; its signers stop working. */
  close(): Promise<void>;
}

export interface KeyManagerOptions {
  /** The server's barrier; without it software keys are plain PKCS#8 PEM files with mode 0600. */
  protector?: KeyProtector;
  /** PKCS#11 module for URIs without module-path (else FLEETROOT_PKCS11_MODULE, else SoftHSM2). */
  defaultPkcs11Module?: string;
}

/** The one place that maps a URI scheme to its backend. */
const backendFactories: {
  [S in KeyUriScheme]: (o: BackendOptions) => KeyBackend<Extract<ParsedKeyUri, { scheme: S }>>;
} = {
  file: (o) => new FileBackend(o),
  pkcs11: (o) => new Pkcs11Backend(o),
};

export function createKeyManager(opts: KeyManagerOptions = {}): KeyManager {
  const options: BackendOptions = {
    protector: opts.protector,
    defaultPkcs11Module: opts.defaultPkcs11Module,
  };
  const backends = new Map<KeyUriScheme, KeyBackend<ParsedKeyUri>>();
  /** Provisional keys not yet kept or discarded, by keyIdentity(); each resolves when its request ends. */
  const pending = new Map<string, Set<Promise<void>>>();
  let closed = false;

  /** Parses the URI and hands it to its scheme's backend, created on first use. */
  function route(uri: string): { backend: KeyBackend<ParsedKeyUri>; parsed: ParsedKeyUri; safeUri: string } {
    if (closed) fail("FR_KEY_BACKEND", "the key manager is closed");
    const parsed = parseKeyUri(uri);
    let backend = backends.get(parsed.scheme);
    if (!backend) {
      // Each factory only ever receives URIs of its own scheme (the map key), so widening is safe here.
      backend = backendFactories[parsed.scheme](options) as KeyBackend<ParsedKeyUri>;
      backends.set(parsed.scheme, backend);
    }
    return { backend, parsed, safeUri: redactKeyUri(uri) };
  }

  return {
    async open(uri) {
      const r = route(uri);
      return r.backend.open(r.parsed, r.safeUri);
    },
    async generate(uri, algorithm) {
      if (!keyAlgorithms.includes(algorithm)) {
        fail(
          "FR_KEY_ALGORITHM",
          `"${String(algorithm)}" is not a key algorithm; use one of ${keyAlgorithms.join(", ")}`,
        );
      }
      const r = route(uri);
      return r.backend.generate(r.parsed, r.safeUri, algorithm);
    },
    async openWrapper(uri) {
      const r = route(uri);
      return r.backend.openWrapper(r.parsed, r.safeUri);
    },
    async generateWrapper(uri, algorithm) {
      if (!wrapAlgorithms.includes(algorithm)) {
        fail(
          "FR_KEY_ALGORITHM",
          `"${String(algorithm)}" is not a wrap algorithm; use one of ${wrapAlgorithms.join(", ")}`,
        );
      }
      const r = route(uri);
      return r.backend.generateWrapper(r.parsed, r.safeUri, algorithm);
    },
    async destroy(uri, publicKey) {
      const r = route(uri);
      return r.backend.destroy(r.parsed, r.safeUri, publicKey);
    },
    async generateProvisional(uri, algorithm) {
      // Registered before the key exists: between its file or token object appearing and this call
      // returning, another request's settled() already waits for it.
      const parsed = parseKeyUri(uri);
      const id = keyIdentity(parsed);
      let release!: () => void;
      const done = new Promise<void>((r) => (release = r));
      const waits = pending.get(id) ?? new Set<Promise<void>>();
      waits.add(done);
      pending.set(id, waits);
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        waits.delete(done);
        if (waits.size === 0 && pending.get(id) === waits) pending.delete(id);
        release();
      };
      let signer: Signer;
      let dirs: string[] = [];
      try {
        // A file key's generate makes missing directories; discard removes them again (if still empty).
        if (parsed.scheme === "file") dirs = await missingParentDirs(parsed.path);
        // `this`: a wrapper that spreads this manager and overrides generate/destroy is honoured.
        signer = await this.generate(uri, algorithm);
      } catch (e) {
        end();
        throw e;
      }
      return {
        signer,
        keep: end,
        discard: async () => {
          if (ended) return;
          try {
            await this.destroy(uri, signer.publicKey);
            for (const d of dirs) await fs.rmdir(d).catch(() => undefined);
          } catch {
            // Best effort: the request's own error is the one to report.
          } finally {
            end();
          }
        },
      };
    },
    async settled(uri) {
      const id = keyIdentity(parseKeyUri(uri));
      for (let w = pending.get(id); w && w.size > 0; w = pending.get(id)) await Promise.all(w);
    },
    async close() {
      closed = true;
      const all = [...backends.values()];
      backends.clear();
      for (const b of all) await b.close();
    },
  };
}

/** What names one key whatever the URI's spelling (attribute order, PIN given as value or file). */
function keyIdentity(p: ParsedKeyUri): string {
  if (p.scheme === "file") return `file:${p.path}`;
  const id = p.id ? Buffer.from(p.id).toString("hex") : "";
  return JSON.stringify([p.modulePath ?? "", p.token, p.serial, p.slotId?.toString(), p.object, id]);
}
