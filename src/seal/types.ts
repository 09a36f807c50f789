import type { KeyWrapper } from "../keys/types.js";
import type { Store } from "../store/index.js";
import type { Clock } from "../util/index.js";
import type { Barrier } from "./barrier.js";

/** Which seal guards the barrier's root key. */
export type SealConfig =
  | { type: "shamir" }
  /** key: pkcs11: URI of an AES or RSA wrap key held in the HSM. */
  | { type: "pkcs11"; key: string }
  | { type: "dev" };

export type SealType = SealConfig["type"];

/** The fields of Vault's sys/seal-status. */
export interface SealStatus {
  type: SealType;
  initialized: boolean;
  sealed: boolean;
  /** Threshold: shares needed to unseal (shamir). */
  t: number;
  /** Number of shares made at init (shamir). */
  n: number;
  /** Shares submitted in the current round. */
  progress: number;
  /** Identifies the current unseal round; "" when no round is in progress. */
  nonce: string;
  version: string;
  migration: boolean;
  recovery_seal: boolean;
  storage_type: string;
}

export interface SealManagerDeps {
  store: Store;
  barrier: Barrier;
  /** Opens the HSM wrap key named by the pkcs11 seal config (e.g. keys.openWrapper(config.key)). */
  wrapper?: () => Promise<KeyWrapper>;
  config: SealConfig;
  clock: Clock;
  /** Dev mode: the only mode that accepts the dev seal. */
  dev?: boolean;
  /** Reported as `version` in the seal status. */
  version?: string;
}

export interface InitRequest {
  secret_shares?: number;
  secret_threshold?: number;
}

export interface InitResult<T> {
  /** Unseal key shares, hex (shamir only; empty for pkcs11 and dev). */
  keys: string[];
  keys_base64: string[];
  /** Whatever afterInit returned (the server's root token, etc.). */
  extra: T;
}
