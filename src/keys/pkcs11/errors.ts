import { FleetError } from "../../errors/index.js";
import { isPkcs11Error, pkcs11js } from "./lib.js";

/**
 * Maps a PKCS#11 failure to a Fleetroot error. `where` says what was being done ("signing with …").
 * pkcs11js messages are the CKR_* name and never contain the PIN.
 */
export function mapPkcs11Error(e: unknown, where: string): FleetError {
  if (e instanceof FleetError) return e;
  if (!isPkcs11Error(e)) {
    return new FleetError("FR_KEY_BACKEND", `${where}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  const ckr = e.message;
  switch (e.code) {
    case pkcs11js.CKR_PIN_INCORRECT:
    case pkcs11js.CKR_PIN_INVALID:
    case pkcs11js.CKR_PIN_LEN_RANGE:
      return new FleetError(
        "FR_KEY_PIN",
        `${where}: the token rejected the PIN (${ckr}); check pin-value/pin-source`,
        {
          cause: e,
        },
      );
    case pkcs11js.CKR_PIN_LOCKED:
    case pkcs11js.CKR_PIN_EXPIRED:
    case pkcs11js.CKR_USER_PIN_NOT_INITIALIZED:
    case pkcs11js.CKR_USER_NOT_LOGGED_IN:
      return new FleetError("FR_KEY_PIN", `${where}: ${ckr}; the token's user PIN must be set and unlocked`, {
        cause: e,
      });
    case pkcs11js.CKR_MECHANISM_INVALID:
    case pkcs11js.CKR_MECHANISM_PARAM_INVALID:
    case pkcs11js.CKR_KEY_TYPE_INCONSISTENT:
      return new FleetError("FR_KEY_MECHANISM", `${where}: the token refused the mechanism (${ckr})`, {
        cause: e,
      });
    case pkcs11js.CKR_TOKEN_NOT_PRESENT:
    case pkcs11js.CKR_TOKEN_NOT_RECOGNIZED:
      return new FleetError("FR_KEY_TOKEN", `${where}: ${ckr}`, { cause: e });
    case pkcs11js.CKR_ENCRYPTED_DATA_INVALID:
    case pkcs11js.CKR_ENCRYPTED_DATA_LEN_RANGE:
      return new FleetError(
        "FR_KEY_FORMAT",
        `${where}: the wrapped value is malformed or was altered (${ckr})`,
        {
          cause: e,
        },
      );
    default:
      return new FleetError("FR_KEY_BACKEND", `${where}: ${ckr}`, { cause: e });
  }
}

/**
 * For decryption (unwrap): SoftHSM2 reports a failed GCM tag or OAEP check as CKR_GENERAL_ERROR, so
 * generic failures there mean "this blob does not decrypt under the key", not a broken backend.
 */
export function mapUnwrapError(e: unknown, where: string): FleetError {
  if (
    isPkcs11Error(e) &&
    (e.code === pkcs11js.CKR_GENERAL_ERROR || e.code === pkcs11js.CKR_FUNCTION_FAILED)
  ) {
    return new FleetError(
      "FR_KEY_FORMAT",
      `${where}: the wrapped value is malformed or was altered (${e.message})`,
      {
        cause: e,
      },
    );
  }
  return mapPkcs11Error(e, where);
}
