import { fail, FleetError } from "../errors/index.js";
import {
  requestKeyUri,
  type KeyAlgorithm,
  type KeyManager,
  type ProvisionalKey,
  type RequestKeyPolicy,
} from "../keys/index.js";
import { keyIdOf, tufKeyFromText, tufSigner, type TufKey, type TufSigner } from "./keys.js";

/**
 * A role key as an operator names it: `uri` for a key this server holds (opened, or generated with
 * `generate`), or `public` (PEM or securesystemslib JSON) for an offline key it never holds.
 */
export interface KeySpec {
  uri?: string;
  generate?: KeyAlgorithm;
  public?: string;
}

export interface ResolvedKey {
  keyid: string;
  key: TufKey;
  uri: string | null;
}

/**
 * The keys of one request. Keys it generated are its own until it ends: `keep()` when it succeeded,
 * `discard()` (which removes them) when it failed; one of the two must be called. Until then another
 * request naming the same URI waits, so it never opens a key that is about to be removed.
 */
export interface RequestKeys {
  keys: ResolvedKey[];
  keep(): void;
  discard(): Promise<void>;
}

/** A key generated for a request. */
interface Generated {
  uri: string;
  key: ProvisionalKey;
}

/** Opens the keys a repository holds, once each, and remembers which failed (sealed, HSM absent). */
export class SignerPool {
  private readonly open = new Map<string, Promise<TufSigner | undefined>>();
  /** `keyPolicy` says what a key URI in a request may name (config `keys`). */
  constructor(
    private readonly keys: KeyManager,
    private readonly keyPolicy: RequestKeyPolicy,
  ) {}

  /**
   * Resolves a request's key specs so that a refused request makes no keys: every spec is checked first
   * (public keys parsed, existing keys opened) and only then are the missing ones with `generate` made.
   * A URI named for several roles is generated once when any of them says `generate`.
   */
  async resolveAll(specs: readonly KeySpec[]): Promise<RequestKeys> {
    for (const s of specs) await requestKeyUri(s.uri, "uri", this.keyPolicy);
    const algorithms = new Map<string, KeyAlgorithm>();
    for (const s of specs)
      if (s.uri && s.generate && !algorithms.has(s.uri)) algorithms.set(s.uri, s.generate);
    const offline: Array<ResolvedKey | undefined> = [];
    const held = new Map<string, ResolvedKey | undefined>();
    for (const s of specs) {
      if (s.public !== undefined || !s.uri) offline.push(offlineKey(s));
      else {
        offline.push(undefined);
        if (!held.has(s.uri)) {
          await this.keys.settled(s.uri); // not a key another request generated and may yet discard
          held.set(s.uri, await this.existing(s.uri, algorithms.has(s.uri)));
        }
      }
    }
    const made: Generated[] = [];
    const keep = () => {
      for (const g of made) g.key.keep();
    };
    const discard = () => this.discard(made);
    try {
      for (const [uri, k] of held) {
        if (k) continue;
        const key = await this.keys.generateProvisional(uri, algorithms.get(uri)!);
        made.push({ uri, key });
        const t = tufSigner(key.signer);
        held.set(uri, { keyid: t.keyid, key: t.key, uri });
      }
    } catch (e) {
      await discard();
      throw e;
    }
    return { keys: specs.map((s, i) => offline[i] ?? held.get(s.uri ?? "")!), keep, discard };
  }

  /** The signer for a stored key, or undefined when this node cannot open it (never an offline key). */
  async signerFor(k: ResolvedKey): Promise<TufSigner | undefined> {
    if (!k.uri) return undefined;
    let p = this.open.get(k.uri);
    if (!p) {
      p = this.keys
        .open(k.uri)
        .then((s) => tufSigner(s))
        .catch(() => undefined);
      this.open.set(k.uri, p);
    }
    const s = await p;
    if (!s) this.open.delete(k.uri); // retry next time: the barrier may be unsealed by then
    return s && s.keyid === k.keyid ? s : undefined;
  }

  /** The key at `uri`, or undefined when it does not exist and the request may generate it. */
  private async existing(uri: string, mayGenerate: boolean): Promise<ResolvedKey | undefined> {
    try {
      const s = tufSigner(await this.keys.open(uri));
      return { keyid: s.keyid, key: s.key, uri };
    } catch (e) {
      if (mayGenerate && e instanceof FleetError && e.code === "FR_KEY_NOT_FOUND") return undefined;
      throw e;
    }
  }

  /**
   * Removes the keys a failed request generated — `file:` keys with the directories made for them, a
   * token's key pairs — each only if it is still the key generated (KeyManager.destroy compares public
   * keys). Best effort, so the request's own error is the one reported.
   */
  private async discard(made: Generated[]): Promise<void> {
    for (const { uri, key } of [...made].reverse()) {
      this.open.delete(uri);
      await key.discard(); // with the directories its generate made
    }
  }
}

function offlineKey(spec: KeySpec): ResolvedKey {
  if (spec.public === undefined)
    return fail("FR_UPDATES_KEY", "a key needs `uri` (held by the server) or `public` (offline)");
  if (spec.uri) fail("FR_UPDATES_KEY", "give a key either as `uri` or as `public`, not both");
  const key = tufKeyFromText(spec.public);
  return { keyid: keyIdOf(key), key, uri: null };
}
