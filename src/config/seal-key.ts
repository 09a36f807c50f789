import { isFleetError } from "../errors/index.js";
import { checkTokenNamed, parseKeyUri } from "../keys/index.js";

/**
 * Why `operator init` would refuse this seal key URI for its form alone, or undefined. Checked at load so a
 * URI init cannot use stops the server before it listens (docs/seal.md); the HSM is not reached here.
 */
export function sealKeyUriProblem(uri: string): string | undefined {
  try {
    const parsed = parseKeyUri(uri);
    if (parsed.scheme !== "pkcs11") return undefined; // the schema's startsWith says what is wrong
    checkTokenNamed(parsed);
    return undefined;
  } catch (e) {
    if (isFleetError(e) && e.code === "FR_KEY_URI") return e.detail ?? e.message;
    throw e;
  }
}
