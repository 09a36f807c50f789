import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { cli } from "./helpers/cli.js";

/** `device` and `ca` follow the same conventions as kv/policy/token: JSON output, deletes, usage errors. */
describe("CLI consistency across command groups", () => {
  let f: Fleet;
  let env: Record<string, string> = {};
  const work = mkdtempSync(join(tmpdir(), "fr-cli-consistency-"));
  const ok = async (args: string[], e: Record<string, string> = env) => {
    const r = await cli(args, e);
    expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    f = await startFleet();
    env = { FLEETROOT_ADDR: f.url, FLEETROOT_TOKEN: f.root };
    const def = join(work, "prov.yaml");
    writeFileSync(def, "type: join-token\nrole: device\n");
    await ok(["device", "provisioner", "write", "factory", "--config", def]);
  }, 60_000);
  afterAll(async () => f?.close());

  it("device --format json prints the server's envelope, as ca/kv/policy/token do", async () => {
    const isEnvelope = (text: string) => {
      const j = JSON.parse(text) as Record<string, unknown>;
      expect(j).toHaveProperty("request_id");
      expect(j).toHaveProperty("data");
      return j.data as Record<string, unknown>;
    };
    // The reference: other groups print the whole envelope.
    isEnvelope((await ok(["-f", "json", "ca", "role", "read", "device"])).stdout);
    isEnvelope((await ok(["-f", "json", "policy", "read", "default"])).stdout);
    // device commands now do too.
    expect(
      isEnvelope((await ok(["-f", "json", "device", "provisioner", "read", "factory"])).stdout),
    ).toMatchObject({
      type: "join-token",
    });
    expect(isEnvelope((await ok(["-f", "json", "device", "provisioner", "list"])).stdout).keys).toContain(
      "factory",
    );
    const tok = isEnvelope(
      (await ok(["-f", "json", "device", "token", "create", "-p", "factory", "--device-id", "d-1"])).stdout,
    );
    expect(tok.token).toMatch(/^frj_/);
    expect(isEnvelope((await ok(["-f", "json", "device", "list"])).stdout)).toMatchObject({
      devices: [expect.objectContaining({ id: "d-1" })],
    });
    expect(isEnvelope((await ok(["-f", "json", "device", "get", "d-1"])).stdout)).toMatchObject({
      id: "d-1",
    });
    expect(isEnvelope((await ok(["-f", "json", "device", "labels", "d-1", "a=b"])).stdout)).toMatchObject({
      labels: { a: "b" },
    });
    isEnvelope((await ok(["-f", "json", "device", "manufacturer", "list"])).stdout);
    // Table output is unchanged: the data, not the envelope.
    const table = (await ok(["device", "provisioner", "read", "factory"])).stdout;
    expect(table).toMatch(/^type\s+join-token$/m);
    expect(table).not.toContain("request_id");
  }, 180_000);

  it("ca revoke checks --reason before any request (exit 2, listing the valid names)", async () => {
    // A dead address: a request would fail with exit 1, so exit 2 shows nothing was sent.
    const dead = { FLEETROOT_ADDR: "http://127.0.0.1:9", FLEETROOT_TOKEN: "t" };
    const r = await cli(["ca", "revoke", "01:02", "--reason", "banana"], dead);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--reason "banana"/);
    for (const name of [
      "unspecified",
      "keyCompromise",
      "superseded",
      "cessationOfOperation",
      "privilegeWithdrawn",
    ])
      expect(r.stderr).toContain(name);
    // removeFromCRL is not a revocation reason (the server refuses it too).
    expect((await cli(["ca", "revoke", "01", "--reason", "removeFromCRL"], dead)).code).toBe(2);
    // Valid names (any case, as the server accepts them) go through to the server.
    const issued = JSON.parse(
      (await ok(["-f", "json", "ca", "issue", "device", "--common-name", "revoke-me"])).stdout,
    ) as { data: { serial_number: string } };
    const rev = await ok([
      "-f",
      "json",
      "ca",
      "revoke",
      issued.data.serial_number,
      "--reason",
      "KEYCOMPROMISE",
    ]);
    expect((JSON.parse(rev.stdout) as { data: { reason: string } }).data.reason).toBe("keyCompromise");
  }, 180_000);

  it("device provisioner delete confirms in one line, like policy/role delete", async () => {
    const def = join(work, "gone.yaml");
    writeFileSync(def, "type: join-token\nrole: device\n");
    await ok(["device", "provisioner", "write", "gone", "--config", def]);
    const del = await ok(["device", "provisioner", "delete", "gone"]);
    expect(del.stdout).toBe("Success! Deleted provisioner: gone\n");
    // --format json prints the same line, as `policy delete` and `ca role delete` do.
    await ok(["device", "provisioner", "write", "gone", "--config", def]);
    const viaJson = await ok(["-f", "json", "device", "provisioner", "delete", "gone"]);
    expect(viaJson.stdout).toBe("Success! Deleted provisioner: gone\n");
    const policyDel = await ok(["-f", "json", "policy", "delete", "nonexistent"]);
    expect(policyDel.stdout).toMatch(/^Success! Deleted policy: nonexistent\n$/);
  }, 180_000);
});
