import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "../src/server/main.js";
import { cli, cliBin, projectRoot } from "./helpers/cli.js";

describe("fleetroot CLI against a running server", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-cli-"));
  let server: Server;
  let addr = "";
  let root = "";
  let shares: string[] = [];
  const env = () => ({ FLEETROOT_ADDR: addr, FLEETROOT_TOKEN: root });

  beforeAll(async () => {
    server = await createServer({
      env: {},
      defaults: {
        data_dir: dir,
        listen: "127.0.0.1:0",
        seal: { type: "shamir" },
        audit: { checkpoint_every: 5 },
      },
    });
    addr = await server.listen();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("--help explains every command group; usage errors exit 2", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    for (const group of ["operator", "token", "policy", "audit", "server"])
      expect(help.stdout).toContain(group);
    const sub = await cli(["token", "create", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain("--policy");
    expect((await cli(["no-such-command"])).code).toBe(2);
    expect((await cli(["token", "create", "--bogus-flag"])).code).toBe(2);
    // A command group without its subcommand prints the group's help as a usage error.
    const group = await cli(["kv"]);
    expect(group.code).toBe(2);
    expect(group.stderr).toContain("Usage: fleetroot kv");
    // A misspelt option is named as unknown, not reported as the required option it was meant to be.
    const typo = await cli(["ca", "root", "create", "--key", "file:/nonexistent/k", "--comon-name", "X"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("unknown option '--comon-name'");
    expect(typo.stderr).not.toContain("required option");
    const missing = await cli(["ca", "root", "create", "--key", "file:/nonexistent/k"]);
    expect([missing.code, missing.stderr]).toEqual([
      2,
      expect.stringContaining("required option '--common-name"),
    ]);
  });

  it("a reader that closes the pipe early ends the command quietly, without a stack trace", async () => {
    const child = spawn(process.execPath, [cliBin, "--help"], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, FLEETROOT_FROM_SOURCE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy(); // as `| head` does once it has read enough
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr).not.toContain("EPIPE");
    expect(code).toBe(0);
  });

  it("operator init, status (exit 2 while sealed), unseal", async () => {
    const init = await cli(
      ["operator", "init", "--key-shares", "3", "--key-threshold", "2", "--format", "json"],
      { FLEETROOT_ADDR: addr },
    );
    expect(init.code, init.stderr).toBe(0);
    const body = JSON.parse(init.stdout);
    shares = body.keys_base64;
    root = body.root_token;
    expect(shares).toHaveLength(3);

    const sealed = await cli(["operator", "status"], { FLEETROOT_ADDR: addr });
    expect(sealed.code).toBe(2);
    expect(sealed.stdout).toMatch(/Sealed\s+true/);

    expect((await cli(["operator", "unseal", shares[0]!], { FLEETROOT_ADDR: addr })).code).toBe(0);
    const second = await cli(["operator", "unseal"], { FLEETROOT_ADDR: addr }, { input: `${shares[2]}\n` });
    expect(second.code, second.stderr).toBe(0);
    const status = await cli(["operator", "status", "--format", "json"], { FLEETROOT_ADDR: addr });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).sealed).toBe(false);
  });

  it("policy write/read/list/delete and token create/lookup/renew/revoke", async () => {
    const policyFile = join(dir, "readers.hcl");
    writeFileSync(policyFile, 'path "secret/data/readers/*" { capabilities = ["read"] }\n');
    expect((await cli(["policy", "write", "readers", policyFile], env())).code).toBe(0);
    expect((await cli(["policy", "read", "readers"], env())).stdout).toContain("secret/data/readers/*");
    expect((await cli(["policy", "list"], env())).stdout).toContain("readers");

    const created = await cli(
      ["token", "create", "--policy", "readers", "--ttl", "1h", "--format", "json"],
      env(),
    );
    expect(created.code, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout).auth.client_token as string;
    const lookup = await cli(["token", "lookup", "--format", "json"], {
      FLEETROOT_ADDR: addr,
      FLEETROOT_TOKEN: token,
    });
    expect(JSON.parse(lookup.stdout).data.policies).toContain("readers");
    expect((await cli(["token", "renew"], { FLEETROOT_ADDR: addr, FLEETROOT_TOKEN: token })).code).toBe(0);
    expect((await cli(["token", "revoke", token], env())).code).toBe(0);
    const after = await cli(["token", "lookup"], { FLEETROOT_ADDR: addr, FLEETROOT_TOKEN: token });
    expect(after.code).toBe(1);
    expect(after.stderr).toContain("permission denied");

    const bad = await cli(["policy", "write", "broken", "-"], env(), {
      input: 'path "x" { capabilities = ["fly"] }',
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/fly/);
    expect((await cli(["policy", "delete", "readers"], env())).code).toBe(0);
  });

  it("token revoke without a token or --self is a usage error and leaves the caller's token alone", async () => {
    const created = await cli(["token", "create", "--ttl", "1h", "--format", "json"], env());
    expect(created.code, created.stderr).toBe(0);
    const child = JSON.parse(created.stdout).auth.client_token as string;
    const childEnv = { FLEETROOT_ADDR: addr, FLEETROOT_TOKEN: child };
    for (const args of [
      ["token", "revoke"],
      ["token", "revoke", "--accessor"],
    ]) {
      const r = await cli(args, childEnv);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain("--self");
    }
    const self = await server.app.inject({
      method: "GET",
      url: "/v1/auth/token/lookup-self",
      headers: { "x-vault-token": child },
    });
    expect(self.statusCode).toBe(200);
  });

  it("token create refuses flag values it cannot use instead of dropping them", async () => {
    const before = (
      await server.app.inject({
        method: "GET",
        url: "/v1/auth/token/accessors?list=true",
        headers: { "x-vault-token": root },
      })
    ).json().data.keys.length as number;
    const uses = await cli(["token", "create", "--use-limit", "1O"], env());
    expect(uses.code).toBe(2);
    expect(uses.stderr).toContain("--use-limit must be a whole number");
    const meta = await cli(["token", "create", "-m", "owner"], env());
    expect(meta.code).toBe(2);
    expect(meta.stderr).toContain('--metadata "owner" is not key=value');
    const after = await server.app.inject({
      method: "GET",
      url: "/v1/auth/token/accessors?list=true",
      headers: { "x-vault-token": root },
    });
    expect(after.json().data.keys).toHaveLength(before);
  });

  it("errors are one clear line with exit 1: unreachable server, missing token", async () => {
    const down = await cli(["operator", "status"], { FLEETROOT_ADDR: "http://127.0.0.1:1" });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("cannot reach the server");
    expect(down.stderr).not.toMatch(/at .*\.ts:\d+/);
    const noToken = await cli(["token", "create"], { FLEETROOT_ADDR: addr });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain("FLEETROOT_TOKEN");
    const noCa = await cli(["operator", "status", "--ca-cert", join(dir, "missing-ca.pem")], {
      FLEETROOT_ADDR: "https://127.0.0.1:1",
    });
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toMatch(/^Error: cannot read --ca-cert .*missing-ca\.pem: ENOENT\n$/);
  });

  it("audit verify passes on the live log and names the line after an edit", async () => {
    await server.core.audit.checkpoint();
    const log = join(dir, "audit.log");
    const ok = await cli(["audit", "verify", log]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^OK: \d+ entries, (1 signed checkpoint|\d+ signed checkpoints) verified in /);
    expect(ok.stdout).not.toContain("note:");
    // Lines after the last checkpoint are named in the text output too (was: only in --format json).
    for (let i = 0; i < 2; i++) await server.app.inject({ method: "GET", url: "/v1/sys/seal-status" });
    const unsigned = await cli(["audit", "verify", log]);
    expect(unsigned.code, unsigned.stderr).toBe(0);
    expect(unsigned.stdout).toMatch(
      /\nnote: the last 2 lines \(from line \d+, seq \d+\) are chained but not yet covered/,
    );
    const strict = await cli(["audit", "verify", "--strict", log]);
    expect(strict.code, strict.stdout + strict.stderr).toBe(1);

    const copy = join(dir, "edited.log");
    const lines = readFileSync(log, "utf8").split("\n");
    lines[4] = lines[4]!.replace('"operation":"', '"operation":"x');
    writeFileSync(copy, lines.join("\n"));
    const bad = await cli(["audit", "verify", copy]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("line 5");

    const tail = await cli(["audit", "tail", "--no-follow", "-n", "2", log]);
    expect(tail.code).toBe(0);
    expect(tail.stdout.trim().split("\n")).toHaveLength(2);
    // A tampered line with raw terminal controls (ESC, the C1 CSI, a bidi override) prints them escaped.
    const hostile = join(dir, "hostile.log");
    writeFileSync(hostile, '{"seq":1,"x":"\u001b]0;owned\u0007 \u009b2J \u202e"}\n');
    const shown = await cli(["audit", "tail", "--no-follow", hostile]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toBe('{"seq":1,"x":"\\u001b]0;owned\\u0007 \\u009b2J \\u202e"}\n');
    const badLines = await cli(["audit", "tail", "--no-follow", "-n", "ten", log]);
    expect(badLines.code).toBe(2);
    expect(badLines.stdout).toBe("");
    copyFileSync(log, join(dir, "unused.log"));
  });
});
