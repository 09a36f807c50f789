import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/index.js";
import { FleetError } from "../src/errors/index.js";
import { createServer } from "../src/server/main.js";
import { cli } from "./helpers/cli.js";
import { serverTls } from "./helpers/tls.js";

// Configuration that `fleetroot server` used to accept, then fail on later (at init, or at every client).
const dir = mkdtempSync(join(tmpdir(), "fr-start-checks-"));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function loadError(text: string, env: Record<string, string> = {}): FleetError {
  try {
    loadConfig({ file: write("fleetroot.yaml", text), env });
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    return e as FleetError;
  }
  throw new Error("the configuration loaded");
}

/** createServer's refusal; the data_dir it was given must not exist afterwards. */
async function startError(name: string, tls: Record<string, string>): Promise<FleetError> {
  const data = join(dir, `data-${name}`);
  const e = await createServer({
    env: {},
    defaults: { listen: "127.0.0.1:8361", data_dir: data, tls },
  }).then(
    async (s) => {
      await s.close();
      return new Error("the server started");
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(FleetError);
  expect(existsSync(data)).toBe(false);
  return e as FleetError;
}

/** A self-signed P-256 certificate valid from `start` to `end` (YYYYMMDDHHMMSSZ), made by `openssl ca`. */
function datedTls(name: string, start: string, end: string): { cert: string; key: string } {
  const at = mkdtempSync(join(dir, `${name}-`));
  const key = join(at, "tls.key");
  const csr = join(at, "tls.csr");
  const cert = join(at, "tls.pem");
  writeFileSync(join(at, "index.txt"), "");
  writeFileSync(join(at, "serial"), "01\n");
  const conf = write(
    `${name}.cnf`,
    `[ca]\ndefault_ca = d\n[d]\ndatabase = ${at}/index.txt\nserial = ${at}/serial\nnew_certs_dir = ${at}\n` +
      "default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
  );
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  run(
    ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      key,
      "-out",
      csr,
    ]),
  );
  run(
    ["ca", "-batch", "-selfsign", "-notext", "-config", conf, "-keyfile", key, "-in", csr].concat([
      "-out",
      cert,
      "-startdate",
      start,
      "-enddate",
      end,
    ]),
  );
  return { cert, key };
}

describe("seal.key: a pkcs11 URI that operator init would refuse stops the start", () => {
  it("a URI that names no token is refused at load, naming seal.key and its source, never the PIN", () => {
    const e = loadError('seal: {type: pkcs11, key: "pkcs11:object=seal?pin-value=1234"}\n');
    expect(e.code).toBe("FR_CONFIG_INVALID");
    expect(e.message).toContain(join(dir, "fleetroot.yaml"));
    expect(e.message).toContain('key "seal.key"');
    expect(e.message).toContain("names no token");
    expect(e.message).not.toContain("1234");

    const v = loadError("", { FLEETROOT_SEAL_TYPE: "pkcs11", FLEETROOT_SEAL_KEY: "pkcs11:object=seal" });
    expect(v.message).toContain('environment FLEETROOT_SEAL_KEY: key "seal.key"');
    expect(v.message).toContain("names no token");

    // A malformed attribute is caught here too (it used to wait for the seal manager, after data_dir).
    const m = loadError('seal: {type: pkcs11, key: "pkcs11:token=fl%zzeet;object=seal"}\n');
    expect(m.message).toContain('key "seal.key": pkcs11 URI attribute "token" has a bad percent-escape');

    for (const key of [
      "pkcs11:token=fleet;object=seal?pin-source=/etc/fleetroot/pin",
      "pkcs11:serial=42;object=s?pin-value=1234",
      "pkcs11:slot-id=0;id=%01?pin-source=/etc/fleetroot/pin",
    ]) {
      const c = loadConfig({ file: write("ok.yaml", `seal: {type: pkcs11, key: "${key}"}\n`), env: {} });
      expect(c.seal).toEqual({ type: "pkcs11", key });
    }
  });
});

describe("tls.client_ca_file must hold valid certificates", () => {
  it("a CERTIFICATE block with bad base64, or a file of a private key only, stops the start", async () => {
    const tls = serverTls(dir);
    const lines = readFileSync(tls.cert, "latin1").split("\n");
    const badBase64 = write(
      "bad-base64.pem",
      lines.map((l, i) => (i === 2 ? `${l.slice(0, 10)}!!!!${l.slice(14)}` : l)).join("\n"),
    );
    const cases: [string, string, string][] = [
      ["base64", badBase64, "the CERTIFICATE block at line 1 is not an X.509 certificate"],
      ["key", tls.key, "it has only PRIVATE KEY blocks"],
    ];
    for (const [name, ca, why] of cases) {
      const e = await startError(name, { cert_file: tls.cert, key_file: tls.key, client_ca_file: ca });
      expect(e.code).toBe("FR_CONFIG_INVALID");
      expect(e.message).toContain(`tls.client_ca_file: ${ca} holds no valid certificate`);
      expect(e.message).toContain(why);
    }
  });
});

describe("tls.cert_file must be valid now", () => {
  it("an expired or not yet valid server certificate stops the start and gives the date", async () => {
    const expired = datedTls("expired", "20200101000000Z", "20210101000000Z");
    const e = await startError("expired", { cert_file: expired.cert, key_file: expired.key });
    expect(e.code).toBe("FR_CONFIG_INVALID");
    expect(e.message).toContain(`tls.cert_file: ${expired.cert}: the server certificate (CN=127.0.0.1)`);
    expect(e.message).toContain("expired on 2021-01-01T00:00:00Z");

    const future = datedTls("future", "20400101000000Z", "20410101000000Z");
    const f = await startError("future", { cert_file: future.cert, key_file: future.key });
    expect(f.code).toBe("FR_CONFIG_INVALID");
    expect(f.message).toContain("is not valid before 2040-01-01T00:00:00Z");
  });

  it("fleetroot server prints the one line and listens on nothing", async () => {
    const expired = datedTls("cli", "20200101000000Z", "20210101000000Z");
    const config = write(
      "cli.yaml",
      `listen: 127.0.0.1:8362\ndata_dir: ${join(dir, "cli-data")}\n` +
        `tls:\n  cert_file: ${expired.cert}\n  key_file: ${expired.key}\n`,
    );
    const r = await cli(["server", "--config", config], {}, { timeoutMs: 40_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(
      `tls.cert_file: ${expired.cert}: the server certificate (CN=127.0.0.1) expired`,
    );
    expect(r.stderr.trimEnd()).toMatch(/\(FR_CONFIG_INVALID\)$/);
    expect(r.stdout).not.toContain("listening");
    expect(existsSync(join(dir, "cli-data"))).toBe(false);
  }, 60_000);
});

describe("whole-number keys", () => {
  it("FLEETROOT_AUDIT_CHECKPOINT_EVERY=1.5 (or 1.5 in the file) says it must be a whole number", () => {
    const v = loadError("", { FLEETROOT_AUDIT_CHECKPOINT_EVERY: "1.5" });
    expect(v.message).toContain(
      'environment FLEETROOT_AUDIT_CHECKPOINT_EVERY: key "audit.checkpoint_every": must be a whole number, not "1.5"',
    );
    expect(v.message).not.toContain("expected number");
    const f = loadError("limits:\n  max_body_bytes: 2048.5\n");
    expect(f.message).toContain('key "limits.max_body_bytes": must be a whole number, not 2048.5');
    // The range message is still zod's own.
    expect(loadError("audit: {checkpoint_every: 0}\n").message).toContain(">=1");
  });
});
