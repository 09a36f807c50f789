import { isFleetError } from "../errors/index.js";
import { checkTokenNamed, parseKeyUri, type Pkcs11KeyUri } from "../keys/index.js";

/**
 * Why `operator init` would refuse this seal key URI, or undefined. Checked at load so a URI init cannot
 * use stops the server before it listens (docs/seal.md). The HSM is not reached here: the URI must parse,
 * name a token, a key (object= or id=), a PIN and a type that can wrap. (The module is looked for
 * when the server opens it, so that tools reading the configuration on another machine are not refused.)
 */
export function sealKeyUriProblem(uri: string): string | undefined {
  let parsed: Pkcs11KeyUri;
  try {
    const p = parseKeyUri(uri);
    if (p.scheme !== "pkcs11") return undefined; // the schema's startsWith says what is wrong
    checkTokenNamed(p);
    parsed = p;
  } catch (e) {
    if (isFleetError(e) && e.code === "FR_KEY_URI") return e.detail ?? e.message;
    throw e;
  }
  const problems = [keyProblem(parsed), pinProblem(parsed), typeProblem(parsed)];
  const found = problems.filter((p) => p !== undefined);
  return found.length ? `the pkcs11 URI ${found.join(", and ")}` : undefined;
}

// What the pkcs11 backend's openWrapper refuses at init: no key name, no PIN, a type other than these two.
function keyProblem(p: Pkcs11KeyUri): string | undefined {
  if (p.object === undefined && p.id === undefined) return "names no key; add object=LABEL (or id=…)";
  return undefined;
}

function pinProblem(p: Pkcs11KeyUri): string | undefined {
  if (p.pinValue === undefined && p.pinSource === undefined)
    return "gives no PIN; add pin-source=FILE (or pin-value=…)";
  return undefined;
}

function typeProblem(p: Pkcs11KeyUri): string | undefined {
  if (p.type === undefined || p.type === "secret-key" || p.type === "private") return undefined;
  return (
    `says type=${p.type}, which cannot wrap the seal's root key; ` +
    "use type=secret-key (AES-256) or type=private (RSA), or leave type= out"
  );
}
