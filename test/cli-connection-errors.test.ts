import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, type CliResult } from "./helpers/cli.js";

// Each connection failure used to end in "…: CODE; is it running?", even when a running server answered
// with the wrong protocol or an untrusted certificate; bad --ca-cert files were ignored and a bad address
// or token printed Node's own text. These pin one line that says what to change.

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
let dir: string;
const servers: http.Server[] = [];
const port: Record<string, number> = {};

function openssl(args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

function file(name: string): string {
  return join(dir, name);
}

/** A self-signed P-256 certificate valid for a day, with its key; `extra` adds -addext and the like. */
function selfSignedCert(subject: string, name: string, extra: string[]): void {
  openssl([
    "req",
    "-x509",
    ...EC,
    "-days",
    "1",
    "-subj",
    subject,
    ...extra,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
  ]);
}

/** Self-signed, like a dev server's, for 127.0.0.1 (or another SAN). */
function selfSigned(name: string, san: string): void {
  selfSignedCert("/CN=localhost", name, ["-addext", `subjectAltName=${san}`]);
}

/** A CA, a leaf it signs for 127.0.0.1, and an expired leaf (2020) signed by `openssl ca`. */
function caAndLeaves(): void {
  selfSignedCert("/CN=Test CA", "ca", [
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ]);
  openssl(
    ["req", "-new", ...EC, "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"].concat([
      "-keyout",
      "leaf.key",
      "-out",
      "leaf.csr",
    ]),
  );
  openssl(
    ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "1"].concat([
      "-copy_extensions",
      "copy",
      "-out",
      "leaf.pem",
    ]),
  );
  writeFileSync(
    file("ca.cnf"),
    "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\n" +
      "policy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n",
  );
  writeFileSync(file("index.txt"), "");
  writeFileSync(file("serial"), "01\n");
  openssl(
    ["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-notext"].concat([
      "-startdate",
      "20200101000000Z",
      "-enddate",
      "20200102000000Z",
      "-in",
      "leaf.csr",
      "-out",
      "expired.pem",
    ]),
  );
}

async function serve(name: string, p: number, tls?: { key: string; cert: string[] }): Promise<void> {
  const handler: http.RequestListener = (_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end("{}");
  };
  const server = tls
    ? https.createServer(
        {
          key: readFileSync(file(tls.key)),
          cert: tls.cert.map((c) => readFileSync(file(c), "utf8")).join(""),
        },
        handler,
      )
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(p, "127.0.0.1", resolve);
  });
  servers.push(server);
  port[name] = (server.address() as AddressInfo).port;
}

function url(scheme: "http" | "https", name: string): string {
  return `${scheme}://127.0.0.1:${port[name]}`;
}

function status(env: Record<string, string>, args: string[] = []): Promise<CliResult> {
  return cli(["operator", "status", ...args], env);
}

/** Exit 1 or 2 and exactly one line on stderr, never a stack trace. */
function oneLine(r: CliResult, code: number): string {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(/^Error: [^\n]+\n$/);
  return r.stderr;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fleetroot-cli-conn-"));
  selfSigned("self", "IP:127.0.0.1");
  selfSigned("othername", "DNS:fleetroot.example");
  caAndLeaves();
  writeFileSync(
    file("garbage.pem"),
    "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
  );
  writeFileSync(file("text.pem"), "this is not a certificate\n");
  writeFileSync(file("empty.pem"), "");
  await serve("self", 8350, { key: "self.key", cert: ["self.pem"] });
  await serve("plain", 8351);
  await serve("leafOnly", 8352, { key: "leaf.key", cert: ["leaf.pem"] });
  await serve("chain", 8353, { key: "leaf.key", cert: ["leaf.pem", "ca.pem"] });
  await serve("expired", 8354, { key: "leaf.key", cert: ["expired.pem"] });
  await serve("othername", 8355, { key: "othername.key", cert: ["othername.pem"] });
}, 60_000);

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("CLI connection errors say what to change", () => {
  it("http:// to a TLS server suggests https://; only nothing listening asks 'is it running?'", async () => {
    const [reset, refused] = await Promise.all([
      status({ FLEETROOT_ADDR: url("http", "self") }),
      status({ FLEETROOT_ADDR: "http://127.0.0.1:8359" }),
    ]);
    const msg = oneLine(reset, 1);
    expect(msg).toContain("closed the connection without answering (ECONNRESET)");
    expect(msg).toContain("if it speaks TLS, use https:// in FLEETROOT_ADDR");
    expect(msg).not.toContain("is it running");
    expect(oneLine(refused, 1)).toBe(
      "Error: cannot reach the server at http://127.0.0.1:8359: ECONNREFUSED; is it running? (FLEETROOT_ADDR)\n",
    );
  });

  it("https:// to a plain-HTTP server says it does not speak TLS there: use http://", async () => {
    const msg = oneLine(await status({ FLEETROOT_ADDR: url("https", "plain") }), 1);
    expect(msg).toMatch(
      /^Error: the server at https:\/\/127\.0\.0\.1:8351 does not speak TLS on that port \(/,
    );
    expect(msg).toContain("use http:// in FLEETROOT_ADDR");
    expect(msg).not.toContain("is it running");
  });

  it("an untrusted server certificate asks for --ca-cert FILE / FLEETROOT_CACERT", async () => {
    const [self, leafOnly, chain, wrongCa] = await Promise.all([
      status({ FLEETROOT_ADDR: url("https", "self") }),
      status({ FLEETROOT_ADDR: url("https", "leafOnly") }),
      status({ FLEETROOT_ADDR: url("https", "chain") }),
      status({ FLEETROOT_ADDR: url("https", "leafOnly") }, ["--ca-cert", file("self.pem")]),
    ]);
    for (const [r, code] of [
      [self, "DEPTH_ZERO_SELF_SIGNED_CERT"],
      [leafOnly, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
      [chain, "SELF_SIGNED_CERT_IN_CHAIN"],
    ] as const) {
      const msg = oneLine(r, 1);
      expect(msg).toContain(`is not trusted (${code}); pass --ca-cert FILE or set FLEETROOT_CACERT`);
      expect(msg).not.toContain("is it running");
    }
    expect(oneLine(wrongCa, 1)).toContain(
      `is not signed by a CA in --ca-cert ${file("self.pem")} (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
  });

  it("an expired server certificate says so: renew it on the server", async () => {
    const r = await status({ FLEETROOT_ADDR: url("https", "expired"), FLEETROOT_CACERT: file("ca.pem") });
    expect(oneLine(r, 1)).toBe(
      "Error: the TLS certificate of the server at https://127.0.0.1:8354 has expired (CERT_HAS_EXPIRED); " +
        "renew it on the server\n",
    );
  });

  it("a host name missing from the certificate names the host and the certificate's names", async () => {
    const r = await status({ FLEETROOT_ADDR: url("https", "othername") }, [
      "--ca-cert",
      file("othername.pem"),
    ]);
    const msg = oneLine(r, 1);
    expect(msg).toContain("the host name 127.0.0.1 in FLEETROOT_ADDR is not in the TLS certificate");
    expect(msg).toContain("(ERR_TLS_CERT_ALTNAME_INVALID)");
    expect(msg).toContain("DNS:fleetroot.example");
  });

  it("a --ca-cert file without a certificate is an error, not ignored", async () => {
    const addr = { FLEETROOT_ADDR: url("https", "self") };
    const [garbage, text, empty, key, fromEnv] = await Promise.all([
      status(addr, ["--ca-cert", file("garbage.pem")]),
      status(addr, ["--ca-cert", file("text.pem")]),
      status(addr, ["--ca-cert", file("empty.pem")]),
      status(addr, ["--ca-cert", file("self.key")]),
      status({ ...addr, FLEETROOT_CACERT: file("empty.pem") }),
    ]);
    expect(oneLine(garbage, 1)).toBe(
      `Error: --ca-cert ${file("garbage.pem")} holds a certificate that does not parse; ` +
        "give the CA certificate in PEM\n",
    );
    expect(oneLine(text, 1)).toContain(`--ca-cert ${file("text.pem")} holds no certificate`);
    expect(oneLine(empty, 1)).toBe(
      `Error: --ca-cert ${file("empty.pem")} holds no certificate: the file is empty\n`,
    );
    expect(oneLine(key, 1)).toContain(
      `--ca-cert ${file("self.key")} holds no certificate: it holds a private key`,
    );
    expect(oneLine(fromEnv, 1)).toContain(`FLEETROOT_CACERT ${file("empty.pem")} holds no certificate`);
  });

  it("an address that is not http:// or https:// is a usage error naming where it came from", async () => {
    const [ftp, flag, notUrl] = await Promise.all([
      status({ FLEETROOT_ADDR: "ftp://x" }),
      status({}, ["--address", "ftp://x"]),
      status({ FLEETROOT_ADDR: "127.0.0.1:8200" }),
    ]);
    expect(oneLine(ftp, 2)).toBe(
      'Error: FLEETROOT_ADDR "ftp://x" must be an http:// or https:// URL, not ftp://\n',
    );
    expect(oneLine(flag, 2)).toBe(
      'Error: --address "ftp://x" must be an http:// or https:// URL, not ftp://\n',
    );
    expect(oneLine(notUrl, 2)).toBe(
      'Error: FLEETROOT_ADDR "127.0.0.1:8200" is not a URL; it must be an http:// or https:// URL\n',
    );
  });

  it("a token a header cannot carry is a usage error that does not echo the token", async () => {
    const [env, flag] = await Promise.all([
      status({ FLEETROOT_ADDR: url("http", "plain"), FLEETROOT_TOKEN: "abc\ndef" }),
      cli(["token", "lookup", "--token", "abc\u0001def"], { FLEETROOT_ADDR: url("http", "plain") }),
    ]);
    expect(oneLine(env, 2)).toBe(
      "Error: the token contains characters an HTTP header cannot carry (a line break or control character); " +
        "check FLEETROOT_TOKEN\n",
    );
    expect(oneLine(flag, 2)).toContain("check --token");
    expect(flag.stderr).not.toContain("abc");
  });
});
