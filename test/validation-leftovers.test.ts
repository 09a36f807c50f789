/**
 * Input that was accepted and then ignored or trusted too late: labels on a decommissioned device,
 * wrongly typed mount fields, roles naming no issuer, provisioners naming no manufacturer, and a PSA
 * token command whose background children outlived its timeout.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { psaTokenFromCommand } from "../src/agent/enroll.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { startTestServer } from "./helpers/server.js";
import { describeEachStore } from "./helpers/stores.js";
import { initAndUnseal } from "./secrets-helpers.js";

describeEachStore("validation leftovers", (ctx) => {
  let f: Fleet;
  beforeAll(async () => {
    f = await startFleet({ storage: ctx.url() });
  });
  afterAll(async () => f?.close());

  it("refuses label changes on a decommissioned device (was: 200, labels rewritten)", async () => {
    expect(
      (await f.api("POST", "fleet/provisioners/factory", { type: "join-token", role: "device" })).status,
    ).toBe(200);
    const tk = await f.api("POST", "fleet/provisioners/factory/tokens", {
      device_id: "gone-1",
      labels: { ring: "stable" },
    });
    expect(tk.status, JSON.stringify(tk)).toBe(200);
    expect((await f.api("POST", "fleet/devices/gone-1/decommission")).status).toBe(200);
    const before = (await f.api("GET", "fleet/devices/gone-1")).data as Record<string, unknown>;
    for (const labels of [{ ring: "canary" }, {}]) {
      const r = await f.api("POST", "fleet/devices/gone-1/labels", { labels });
      expect(r).toMatchObject({ status: 400, code: "FR_DEVICE_STATE" });
      expect(String((r.errors as string[])[0])).toMatch(/gone-1.*decommissioned/);
    }
    const after = (await f.api("GET", "fleet/devices/gone-1")).data as Record<string, unknown>;
    expect(after).toEqual(before);
    expect(
      ((await f.api("GET", "fleet/devices?label=ring%3Dstable")).data as { keys: string[] }).keys,
    ).toEqual(["gone-1"]);
    // Unknown devices stay 404; live ones still take labels.
    expect(await f.api("POST", "fleet/devices/nobody/labels", { labels: {} })).toMatchObject({
      status: 404,
      code: "FR_DEVICE_NOT_FOUND",
    });
    await f.api("POST", "fleet/provisioners/factory/tokens", { device_id: "live-1" });
    expect((await f.api("POST", "fleet/devices/live-1/labels", { labels: { a: "b" } })).status).toBe(200);
  });

  it("refuses wrongly typed sys/mounts fields with 400 and creates nothing (was: description ignored)", async () => {
    const bad: Record<string, Record<string, unknown>> = {
      "description number": { type: "kv", description: 5 },
      "description object": { type: "kv", description: { a: 1 } },
      "description array": { type: "kv", description: ["x"] },
      "description boolean": { type: "kv", description: true },
      "description over 1 KiB (was: cut silently)": { type: "kv", description: "d".repeat(1025) },
      "type number": { type: 2 },
      "type object": { type: { kv: true } },
      "type missing": { description: "x" },
      "options string": { type: "kv", options: "version=2" },
      "options array": { type: "kv", options: ["2"] },
      "config string": { type: "kv", config: "1h" },
      "config array": { type: "kv", config: [] },
      "config number": { type: "kv", config: 3 },
      "max_lease_ttl object in config": { type: "kv", config: { max_lease_ttl: {} } },
    };
    for (const [name, body] of Object.entries(bad)) {
      const r = await f.t.call("POST", "sys/mounts/typed", body, f.root);
      expect(r.statusCode, `${name}: ${r.body}`).toBe(400);
      expect(r.json().code, name).toBe("FR_VALIDATION");
      const field = name.split(" ")[0]!;
      expect(r.json().errors[0], name).toContain(field);
      expect((await f.t.call("GET", "sys/mounts/typed", undefined, f.root)).statusCode, name).toBe(404);
    }
    // Null means absent, as Vault decodes it; a string description is kept.
    const ok = await f.t.call(
      "POST",
      "sys/mounts/typed",
      { type: "kv", description: null, config: null, options: null },
      f.root,
    );
    expect(ok.statusCode, ok.body).toBe(204);
    const tuned = await f.t.call("POST", "sys/mounts/typed/tune", { description: 7 }, f.root);
    expect([tuned.statusCode, tuned.json().code]).toEqual([400, "FR_VALIDATION"]);
    expect(
      (await f.t.call("POST", "sys/mounts/typed/tune", { description: "kept" }, f.root)).statusCode,
    ).toBe(204);
    expect((await f.t.call("GET", "sys/mounts/typed", undefined, f.root)).json().data.description).toBe(
      "kept",
    );
    const long = await f.t.call("POST", "sys/mounts/typed/tune", { description: "x".repeat(2000) }, f.root);
    expect([long.statusCode, long.json().errors[0]]).toEqual([
      400,
      expect.stringContaining("2000 characters"),
    ]);
    const full = "y".repeat(1024);
    expect((await f.t.call("POST", "sys/mounts/typed/tune", { description: full }, f.root)).statusCode).toBe(
      204,
    );
    expect((await f.t.call("GET", "sys/mounts/typed", undefined, f.root)).json().data.description).toBe(full);
    // Leases above the system's max (768h) are refused at mount and at tune, as Vault does.
    for (const config of [{ default_lease_ttl: "800h" }, { max_lease_ttl: "769h" }]) {
      const t = await f.t.call("POST", "sys/mounts/typed/tune", config, f.root);
      expect([t.statusCode, t.json().errors[0]]).toEqual([
        400,
        expect.stringContaining("system max lease TTL"),
      ]);
      const m = await f.t.call("POST", "sys/mounts/long", { type: "kv", config }, f.root);
      expect(m.statusCode, m.body).toBe(400);
    }
    expect((await f.t.call("GET", "sys/mounts/long", undefined, f.root)).statusCode).toBe(404);
    expect(
      (await f.t.call("GET", "sys/mounts/typed/tune", undefined, f.root)).json().data.default_lease_ttl,
    ).toBe(0);
  });

  it("refuses a role whose issuer_ref names no issuer, at write time (was: failed only when issuing)", async () => {
    const r = await f.api("POST", "pki/roles/ghost", { issuer_ref: "no-such-ca", allow_any_name: true });
    expect(r).toMatchObject({ status: 400, code: "FR_PKI_ROLE_INVALID" });
    expect(String((r.errors as string[])[0])).toContain('"no-such-ca"');
    expect((await f.api("GET", "pki/roles/ghost")).status).toBe(404);
    // An existing role keeps its issuer when the update names a missing one.
    expect((await f.api("POST", "pki/roles/device", { issuer_ref: "no-such-ca" })).status).toBe(400);
    expect(((await f.api("GET", "pki/roles/device")).data as { issuer_ref: string }).issuer_ref).toBe(
      "default",
    );
    // By id and by name both work.
    const issuers = (await f.api("GET", "pki/issuers?list=true")).data as {
      keys: string[];
      key_info: Record<string, { issuer_name: string }>;
    };
    const id = issuers.keys[0]!;
    expect((await f.api("POST", "pki/roles/by-id", { issuer_ref: id })).status).toBe(200);
    const byName = await f.api("POST", "pki/roles/by-name", {
      issuer_ref: issuers.key_info[id]!.issuer_name,
    });
    expect(byName.status, JSON.stringify(byName)).toBe(200);
  });

  it("still takes roles with the default issuer_ref before any issuer exists", async () => {
    const t = await startTestServer(await ctx.fresh());
    try {
      const { root } = await initAndUnseal(t);
      for (const body of [{ allow_any_name: true }, { issuer_ref: "default" }]) {
        const r = await t.call("POST", "pki/roles/early", body, root);
        expect(r.statusCode, r.body).toBeLessThan(300);
      }
      const r = await t.call("POST", "pki/roles/early2", { issuer_ref: "later" }, root);
      expect([r.statusCode, r.json().code]).toEqual([400, "FR_PKI_ROLE_INVALID"]);
    } finally {
      await t.close();
    }
  });

  it("refuses an x509 provisioner naming unregistered manufacturers, naming them (was: accepted)", async () => {
    const r = await f.api("POST", "fleet/provisioners/idev", {
      type: "x509",
      role: "device",
      manufacturers: ["acme", "globex", "initech"],
    });
    expect(r).toMatchObject({ status: 400, code: "FR_PROVISIONER_INVALID" });
    expect(String((r.errors as string[])[0])).toMatch(/"acme", "globex", "initech"/);
    expect((await f.api("GET", "fleet/provisioners/idev")).status).toBe(404);
    const ca = (await f.t.call("GET", "pki/ca/pem")).body;
    expect((await f.api("POST", "fleet/manufacturers/acme", { certificate: ca })).status).toBe(200);
    const partly = await f.api("POST", "fleet/provisioners/idev", {
      type: "x509",
      role: "device",
      manufacturers: ["acme", "globex"],
    });
    expect(partly).toMatchObject({ status: 400, code: "FR_PROVISIONER_INVALID" });
    expect(String((partly.errors as string[])[0])).toMatch(/"globex"/);
    expect(String((partly.errors as string[])[0])).not.toMatch(/"acme"/);
    const ok = await f.api("POST", "fleet/provisioners/idev", {
      type: "x509",
      role: "device",
      manufacturers: ["acme"],
    });
    expect(ok.status, JSON.stringify(ok)).toBe(200);
  });
});

/** Gone, or a zombie nobody has reaped yet (PID 1 in a container may not reap): either way not running. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms = 3_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
    if (!running(pid)) return true;
  return !running(pid);
}

it("a PSA token command's background children are killed with it at the timeout (was: the sleep survived)", async () => {
  const pidFile = join(mkdtempSync(join(tmpdir(), "fr-psa-")), "pid");
  const started = Date.now();
  await expect(
    psaTokenFromCommand(`sleep 30 & echo $! > ${pidFile}; trap "" TERM; sleep 60`, Buffer.alloc(32), 500),
  ).rejects.toThrow(/timed out/);
  expect(Date.now() - started).toBeLessThan(5_000);
  const pid = Number(readFileSync(pidFile, "utf8"));
  expect(pid).toBeGreaterThan(1);
  const gone = await waitGone(pid);
  if (!gone) process.kill(pid, "SIGKILL");
  expect(gone, `sleep ${pid} still running`).toBe(true);
});

it("a PSA token command that exits leaving a child holding stdout still answers (was: enroll waited)", async () => {
  const pidFile = join(mkdtempSync(join(tmpdir(), "fr-psa-")), "pid");
  const started = Date.now();
  const token = await psaTokenFromCommand(
    `sleep 30 & echo $! > ${pidFile}; printf 'dG9rZW4='`,
    Buffer.alloc(32),
    20_000,
  );
  const pid = Number(readFileSync(pidFile, "utf8"));
  if (running(pid)) process.kill(pid, "SIGKILL");
  expect(token).toBe("dG9rZW4=");
  expect(Date.now() - started).toBeLessThan(3_000);
});

it("a PSA token command's failure and its stderr are reported, and binary output is base64", async () => {
  await expect(psaTokenFromCommand("echo no-device >&2; exit 3", Buffer.alloc(32), 5_000)).rejects.toThrow(
    /failed \(exit status 3\): no-device/,
  );
  const challenge = Buffer.alloc(32, 0xab);
  expect(await psaTokenFromCommand('printf "$FLEETROOT_PSA_CHALLENGE"', challenge, 5_000)).toBe(
    challenge.toString("hex"),
  );
  expect(await psaTokenFromCommand("printf '\\001\\002\\377'", challenge, 5_000)).toBe(
    Buffer.from([1, 2, 255]).toString("base64"),
  );
});
