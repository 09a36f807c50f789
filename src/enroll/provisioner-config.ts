/**
 * Provisioner definitions: a name, a type, the PKI role it is bound to, and type-specific settings.
 * Validated strictly on write (unknown fields are errors) and stored normalized.
 */
import { z } from "zod";
import { fail } from "../errors/index.js";
import { parseDuration } from "../util/duration.js";

const duration = z.union([z.string(), z.number()]);
const hex = (min: number, max: number) =>
  z
    .string()
    .regex(/^([0-9a-fA-F]{2})+$/, "must be hex")
    .refine((s) => s.length / 2 >= min && s.length / 2 <= max, `must be ${min}-${max} bytes`)
    .transform((s) => s.toLowerCase());

export const PSA_PROFILE_2 = "http://arm.com/psa/2.0.0";
export const PSA_PROFILE_IOT_1 = "PSA_IOT_PROFILE_1";

const common = {
  role: z.string().min(1).max(128),
  /** Certificate lifetime asked of the role (capped by its max_ttl); default the role's ttl. */
  ttl: duration.optional(),
  /** How long after expiry a certificate may still renew (devices that were offline). Default 0: off. */
  renew_grace: duration.optional(),
};

const input = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("join-token"),
    ...common,
    /** Default and upper bound of a token's lifetime. */
    token_ttl: duration.optional(),
    max_token_ttl: duration.optional(),
  }),
  z.strictObject({ type: z.literal("registered-key"), ...common }),
  z.strictObject({
    type: z.literal("x509"),
    ...common,
    manufacturers: z.array(z.string().min(1).max(128)).min(1).max(32),
    /** Where the device id comes from in the IDevID certificate. */
    device_id_from: z.enum(["serial", "subject.CN", "subject.serialNumber"]).optional(),
    device_id_prefix: z.string().max(64).optional(),
  }),
  z.strictObject({
    type: z.literal("psa"),
    ...common,
    profiles: z
      .array(z.enum([PSA_PROFILE_2, PSA_PROFILE_IOT_1]))
      .min(1)
      .optional(),
    /** Allowed implementation ids (hex); empty = any. */
    implementation_ids: z.array(hex(32, 32)).max(64).optional(),
    /** Reference values: every software component in a token must match one of these. */
    reference_values: z
      .array(
        z.strictObject({
          measurement_value: hex(32, 64),
          signer_id: hex(32, 64).optional(),
          measurement_type: z.string().max(64).optional(),
        }),
      )
      .min(1)
      .max(1024),
  }),
]);

interface Common {
  readonly name: string;
  readonly role: string;
  /** Seconds; 0 = the role's ttl. */
  readonly ttl: number;
  readonly renew_grace: number;
}

export type ProvisionerConfig =
  | (Common & { readonly type: "join-token"; readonly token_ttl: number; readonly max_token_ttl: number })
  | (Common & { readonly type: "registered-key" })
  | (Common & {
      readonly type: "x509";
      readonly manufacturers: readonly string[];
      readonly device_id_from: "serial" | "subject.CN" | "subject.serialNumber";
      readonly device_id_prefix: string;
    })
  | (Common & {
      readonly type: "psa";
      readonly profiles: readonly string[];
      readonly implementation_ids: readonly string[];
      readonly reference_values: readonly {
        readonly measurement_value: string;
        readonly signer_id?: string | undefined;
        readonly measurement_type?: string | undefined;
      }[];
    });

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkProvisionerName(name: string): string {
  if (!NAME.test(name))
    fail(
      "FR_VALIDATION",
      `provisioner name "${name.slice(0, 64)}" must be 1-64 letters, digits, ".", "_" or "-"`,
    );
  return name;
}

export function parseProvisioner(name: string, body: unknown): ProvisionerConfig {
  checkProvisionerName(name);
  const r = input.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "the provisioner";
    fail("FR_PROVISIONER_INVALID", `${where}: ${issue?.message ?? "invalid"}`);
  }
  const i = r.data;
  const c: Common = {
    name,
    role: i.role,
    ttl: parseDuration(i.ttl, "ttl"),
    renew_grace: parseDuration(i.renew_grace, "renew_grace"),
  };
  switch (i.type) {
    case "join-token": {
      const tokenTtl = parseDuration(i.token_ttl, "token_ttl") || 3600;
      const maxTtl = parseDuration(i.max_token_ttl, "max_token_ttl") || 24 * 3600;
      if (tokenTtl > maxTtl) fail("FR_PROVISIONER_INVALID", "token_ttl must not exceed max_token_ttl");
      return { ...c, type: i.type, token_ttl: tokenTtl, max_token_ttl: maxTtl };
    }
    case "registered-key":
      return { ...c, type: i.type };
    case "x509":
      return {
        ...c,
        type: i.type,
        manufacturers: i.manufacturers,
        device_id_from: i.device_id_from ?? "serial",
        device_id_prefix: i.device_id_prefix ?? "",
      };
    case "psa":
      return {
        ...c,
        type: i.type,
        profiles: i.profiles ?? [PSA_PROFILE_2, PSA_PROFILE_IOT_1],
        implementation_ids: i.implementation_ids ?? [],
        reference_values: i.reference_values,
      };
  }
}
