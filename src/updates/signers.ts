import { fail, FleetError } from "../errors/index.js";
import type { KeyAlgorithm, KeyManager } from "../keys/index.js";
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

/** Opens the keys a repository holds, once each, and remembers which failed (sealed, HSM absent). */
export class SignerPool {
  private readonly open = new Map<string, Promise<TufSigner | undefined>>();
  constructor(private readonly keys: KeyManager) {}

  async resolve(spec: KeySpec): Promise<ResolvedKey> {
    if (spec.public !== undefined) {
      if (spec.uri) fail("FR_UPDATES_KEY", "give a key either as `uri` or as `public`, not both");
      const key = tufKeyFromText(spec.public);
      return { keyid: keyIdOf(key), key, uri: null };
    }
    if (!spec.uri)
      return fail("FR_UPDATES_KEY", "a key needs `uri` (held by the server) or `public` (offline)");
    const signer = await this.openOrGenerate(spec.uri, spec.generate);
    return { keyid: signer.keyid, key: signer.key, uri: spec.uri };
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

  private async openOrGenerate(uri: string, alg: KeyAlgorithm | undefined): Promise<TufSigner> {
    try {
      return tufSigner(await this.keys.open(uri));
    } catch (e) {
      if (alg && e instanceof FleetError && e.code === "FR_KEY_NOT_FOUND") {
        return tufSigner(await this.keys.generate(uri, alg));
      }
      throw e;
    }
  }
}
