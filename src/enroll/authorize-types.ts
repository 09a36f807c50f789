import type { ParsedCsr } from "../crypto/index.js";
import type { DeviceRegistry, NewDevice } from "../devices/index.js";
import type { Clock } from "../util/clock.js";
import type { IdentityStore } from "./identity-store.js";
import type { JoinTokenStore } from "./join-tokens.js";
import type { NonceStore } from "./nonces.js";
import type { ProvisionerConfig } from "./provisioner-config.js";
import type { SignOptions } from "./sign-options.js";

export interface AuthorizeDeps {
  readonly clock: Clock;
  readonly identities: IdentityStore;
  readonly tokens: JoinTokenStore;
  readonly nonces: NonceStore;
  readonly registry: DeviceRegistry;
}

export interface EnrollRequest {
  readonly csr: ParsedCsr;
  /** The JSON body: the proof fields of the provisioner's type. */
  readonly body: Record<string, unknown>;
}

/** A provisioner's verdict: what may be signed, and whether the device is new. */
export interface Authorization {
  readonly options: SignOptions;
  /** Set when the device does not exist yet: created with the certificate, in one transaction. */
  readonly newDevice?: NewDevice | undefined;
  /** Gives back a single-use credential when issuance fails afterwards. */
  readonly undo?: (() => Promise<void>) | undefined;
  /** Plain fields for the audit event (never secrets). */
  readonly audit: Record<string, string>;
}

export type Authorize<T extends ProvisionerConfig["type"]> = (
  deps: AuthorizeDeps,
  cfg: Extract<ProvisionerConfig, { type: T }>,
  req: EnrollRequest,
) => Promise<Authorization>;
