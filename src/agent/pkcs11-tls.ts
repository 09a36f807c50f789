/**
 * Mutual TLS with a device key that stays in a PKCS#11 token. Node's TLS client takes a private key
 * either in memory or from an OpenSSL engine (`privateKeyEngine` / `privateKeyIdentifier`); libp11's
 * `pkcs11` engine (Debian: libengine-pkcs11-openssl) is such an engine, and Node's bundled OpenSSL 3.0
 * loads it (it resolves its libcrypto calls against the symbols Node exports).
 *
 * The request runs in a short-lived child process, for two reasons found by trying it in-process:
 * - libp11 keeps its own PKCS#11 context and the engine stays cached in OpenSSL's engine list; when the
 *   agent's KeyManager finalizes the same module (C_Finalize on close), the engine's next key load fails
 *   with "Cryptoki not initialized", and libp11 finalizes the module under the KeyManager in turn;
 * - on a failed key load libp11 prints the key URI, PIN included, to stderr. The child's stderr is
 *   captured and redacted instead of reaching the agent's log.
 * The PIN reaches the child on stdin, never in argv or the environment.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fail } from "../errors/index.js";
import { type Pkcs11KeyUri, parseKeyUri, redactKeyUri } from "../keys/index.js";
import { softHsmModule } from "../keys/pkcs11/backend.js";
import { type AgentHttpOptions, Unreachable, answerOf } from "./enroll-http.js";

/** What the child prints on stdout: one JSON object. */
type ChildAnswer =
  | { readonly kind: "response"; readonly status: number; readonly body: string }
  | { readonly kind: "key" | "net"; readonly message: string };

/**
 * The child: loads the key through the engine into a secure context, makes one POST, prints the answer.
 * Plain CommonJS so it runs under `node -e` whatever the agent was started with.
 */
const CHILD = `
const https = require("node:https");
const tls = require("node:tls");
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const o = JSON.parse(input);
  input = "";
  const done = (r) => process.stdout.write(JSON.stringify(r), () => process.exit(0));
  let secureContext;
  try {
    secureContext = tls.createSecureContext({
      ...(o.ca ? { ca: o.ca } : {}),
      cert: o.cert,
      privateKeyEngine: "pkcs11",
      privateKeyIdentifier: o.key,
    });
  } catch (e) {
    return done({ kind: "key", message: String(e && e.message) });
  }
  o.key = "";
  const payload = Buffer.from(o.body);
  const req = https.request(o.url, {
    method: "POST",
    secureContext,
    agent: false,
    timeout: o.timeoutMs,
    headers: { "content-type": "application/json", "content-length": String(payload.length) },
  }, (res) => {
    const chunks = [];
    res.on("data", (c) => chunks.push(c));
    res.on("error", (e) => done({ kind: "net", message: e.message }));
    res.on("end", () => done({ kind: "response", status: res.statusCode, body: Buffer.concat(chunks).toString("utf8") }));
  });
  req.on("timeout", () => req.destroy(new Error("timed out")));
  req.on("error", (e) => done({ kind: "net", message: e.code || e.message }));
  req.end(payload);
});
`;

const MULTIARCH: Record<string, string> = {
  x64: "x86_64-linux-gnu",
  arm64: "aarch64-linux-gnu",
  arm: "arm-linux-gnueabihf",
  riscv64: "riscv64-linux-gnu",
};

/** The directory holding libp11's `pkcs11.so` for OpenSSL 3 (OPENSSL_ENGINES first, then the usual places). */
export function pkcs11EngineDir(): string {
  const arch = MULTIARCH[process.arch];
  const candidates = [
    process.env.OPENSSL_ENGINES,
    ...(arch ? [`/usr/lib/${arch}/engines-3`] : []),
    "/usr/lib64/engines-3",
    "/usr/lib/engines-3",
    "/usr/local/lib/engines-3",
  ];
  for (const dir of candidates) if (dir && existsSync(path.join(dir, "pkcs11.so"))) return dir;
  return fail(
    "FR_AGENT_STATE",
    "renewing with a pkcs11: key needs OpenSSL's PKCS#11 engine (pkcs11.so): install libengine-pkcs11-openssl " +
      "(Debian/Ubuntu) or openssl-pkcs11 (Fedora), or set OPENSSL_ENGINES to the directory holding pkcs11.so",
  );
}

function readPin(p: Pkcs11KeyUri, shown: string): string {
  if (p.pinValue !== undefined) return p.pinValue;
  if (p.pinSource === undefined) fail("FR_KEY_PIN", `${shown} gives no PIN; add pin-source=FILE`);
  try {
    // Same rule as the KeyManager: one trailing newline is not part of the PIN.
    return readFileSync(p.pinSource, "utf8").replace(/\r?\n$/, "");
  } catch (e) {
    return fail(
      "FR_KEY_PIN",
      `cannot read the PIN file ${p.pinSource}: ${(e as NodeJS.ErrnoException).code}`,
    );
  }
}

/**
 * The URI in the form libp11 0.4 accepts: it selects by token, serial, object and id only (no
 * module-path, which goes in PKCS11_MODULE_PATH instead, and no slot-id).
 */
function engineKeyId(p: Pkcs11KeyUri, pin: string, shown: string): string {
  if (p.token === undefined && p.serial === undefined && p.slotId !== undefined) {
    fail(
      "FR_AGENT_STATE",
      `${shown}: name the token with token= or serial= (the PKCS#11 engine has no slot-id)`,
    );
  }
  const enc = encodeURIComponent;
  const attrs = [
    ...(p.token !== undefined ? [`token=${enc(p.token)}`] : []),
    ...(p.serial !== undefined ? [`serial=${enc(p.serial)}`] : []),
    ...(p.object !== undefined ? [`object=${enc(p.object)}`] : []),
    ...(p.id !== undefined
      ? [`id=${[...p.id].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")}`]
      : []),
    "type=private",
  ];
  return `pkcs11:${attrs.join(";")}?pin-value=${enc(pin)}`;
}

/** Removes every pin-value (and the PIN itself) from text the engine printed. */
function scrub(text: string, pin: string): string {
  let t = text.replace(/pin-value=[^&\s]*/gi, "pin-value=…");
  if (pin.length >= 3) t = t.split(pin).join("…");
  return t.trim().split("\n").slice(-4).join("; ");
}

/**
 * POST `body` as JSON to `/v1/<apiPath>` over mutual TLS, the client key being the pkcs11: `keyUri`.
 * Answers and errors are the same as postJson's: JSON body, ServerRefusal, Unreachable; a key the
 * engine cannot load is FR_AGENT_STATE (not retried).
 */
export async function postJsonWithPkcs11Key(
  opts: AgentHttpOptions,
  apiPath: string,
  body: unknown,
  keyUri: string,
): Promise<Record<string, unknown>> {
  const shown = redactKeyUri(keyUri);
  const parsed = parseKeyUri(keyUri);
  if (parsed.scheme !== "pkcs11") return fail("FR_AGENT_STATE", `${shown} is not a pkcs11: key URI`);
  const url = new URL(`/v1/${apiPath}`, opts.server);
  if (url.protocol !== "https:") {
    fail("FR_AGENT_STATE", `renewal needs mutual TLS, but the server address ${opts.server} is not https:`);
  }
  if (!opts.clientCert)
    fail("FR_AGENT_STATE", "renewal needs the current certificate as the TLS client certificate");
  const engines = pkcs11EngineDir();
  const pin = readPin(parsed, shown);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const request = JSON.stringify({
    url: url.href,
    ca: opts.ca === undefined ? undefined : opts.ca.toString(),
    cert: opts.clientCert,
    key: engineKeyId(parsed, pin, shown),
    body: JSON.stringify(body),
    timeoutMs,
  });
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, ["-e", CHILD], {
        stdio: ["pipe", "pipe", "pipe"],
        timeout: timeoutMs + 10_000,
        env: {
          ...process.env,
          OPENSSL_ENGINES: engines,
          PKCS11_MODULE_PATH: parsed.modulePath ?? process.env.FLEETROOT_PKCS11_MODULE ?? softHsmModule,
        },
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (c: Buffer) => out.push(c));
      child.stderr.on("data", (c: Buffer) => err.push(c));
      child.on("error", (e) => reject(new Unreachable(`cannot start the TLS helper: ${e.message}`)));
      child.on("close", (exit) =>
        resolve({
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
          code: exit,
        }),
      );
      child.stdin.on("error", () => undefined); // a child that died early is reported by "close"
      child.stdin.end(request);
    },
  );
  let answer: ChildAnswer;
  try {
    answer = JSON.parse(stdout) as ChildAnswer;
  } catch {
    const why = `the TLS helper for ${shown} ended without an answer (exit ${code ?? "signal"}): ${scrub(stderr, pin) || "no output"}`;
    // Killed (its time limit): worth another try later. Anything else is a local fault.
    if (code === null) throw new Unreachable(why);
    return fail("FR_AGENT_STATE", why);
  }
  if (answer.kind === "response") return answerOf(answer.status, answer.body, apiPath);
  if (answer.kind === "net")
    throw new Unreachable(`cannot reach ${url.origin}: ${scrub(answer.message, pin)}`);
  const detail = scrub(`${answer.message}\n${stderr}`, pin);
  return fail("FR_AGENT_STATE", `the PKCS#11 engine cannot use the device key ${shown}: ${detail}`);
}
