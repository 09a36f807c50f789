import type { ParsedKeyUri } from "./uri.js";
import type { KeyAlgorithm, KeyProtector, KeyWrapper, Signer, WrapAlgorithm } from "./types.js";

/** One key store chosen by URI scheme. `uri` is the caller's URI with any PIN removed, for Signer.uri. */
export interface KeyBackend<U extends ParsedKeyUri> {
  open(parsed: U, uri: string): Promise<Signer>;
  generate(parsed: U, uri: string, algorithm: KeyAlgorithm): Promise<Signer>;
  openWrapper(parsed: U, uri: string): Promise<KeyWrapper>;
  generateWrapper(parsed: U, uri: string, algorithm: WrapAlgorithm): Promise<KeyWrapper>;
  /** Removes the signing key at the URI if its public key is `publicKey`; whether one was removed. */
  destroy(parsed: U, uri: string, publicKey: Uint8Array): Promise<boolean>;
  close(): Promise<void>;
}

export interface BackendOptions {
  readonly protector: KeyProtector | undefined;
  readonly defaultPkcs11Module: string | undefined;
}
