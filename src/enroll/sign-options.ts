/**
 * What a provisioner hands to the authority: everything the certificate may contain, decided by the
 * provisioner from the proof. The authority (pki/) signs exactly this and nothing the CSR asks for
 * beyond its public key. A discriminated union so each method's evidence travels with it, typed.
 */
export interface SignOptionsBase {
  /** The PKI role the provisioner is bound to: issuer, TTL bounds, key types, usages. */
  readonly role: string;
  readonly deviceId: string;
  /** Requested lifetime in seconds; the role's max_ttl still caps it. 0 = the role's ttl. */
  readonly ttlSeconds: number;
  /** Subject CN of the certificate (the device id). */
  readonly commonName: string;
  /** URI SANs (urn:fleetroot:device:<id>), DNS SANs the provisioner allows. */
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
  /** The provisioner that authorized this (audit, registry). */
  readonly provisioner: string;
}

export type SignOptions =
  | (SignOptionsBase & { readonly method: "join-token"; readonly tokenAccessor: string })
  | (SignOptionsBase & { readonly method: "registered-key"; readonly keyFingerprint: string })
  | (SignOptionsBase & {
      readonly method: "x509";
      readonly manufacturer: string;
      /** Serial (hex) and subject of the IDevID certificate that proved the identity. */
      readonly idevidSerial: string;
      readonly idevidSubject: string;
    })
  | (SignOptionsBase & {
      readonly method: "psa";
      readonly instanceId: string;
      readonly implementationId: string;
    })
  | (SignOptionsBase & {
      readonly method: "renewal";
      readonly previousSerial: string;
      readonly rekey: boolean;
    });

export type EnrollMethod = Exclude<SignOptions["method"], "renewal">;

export const enrollMethods: readonly EnrollMethod[] = ["join-token", "registered-key", "x509", "psa"];

/** The names every device certificate carries. */
export function deviceNames(deviceId: string): Pick<SignOptionsBase, "commonName" | "uriSans"> {
  return { commonName: deviceId, uriSans: [`urn:fleetroot:device:${deviceId}`] };
}
