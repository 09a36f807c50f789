/**
 * Bad input to the server's ros2/* and updates/* routes and to `fleetroot device`: each case is a request
 * once answered wrongly (a 500, a silent change, the wrong bytes or exit code).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { cli } from "./helpers/cli.js";

let f: Fleet;
beforeAll(async () => {
  f = await startFleet();
});
afterAll(async () => f?.close());

const errorOf = (r: Record<string, unknown>) => ({ status: r.status, code: r.code });

describe("ros2/config, policies and assignments", () => {
  it("a ca_ttl or enclave_ttl that is not a duration, or absurdly long, is FR_VALIDATION (was a 500)", async () => {
    for (const body of [{ ca_ttl: {} }, { ca_ttl: "9999999h" }, { enclave_ttl: true }]) {
      expect(errorOf(await f.api("POST", "ros2/config", body)), JSON.stringify(body)).toEqual({
        status: 400,
        code: "FR_VALIDATION",
      });
    }
    // Nothing was created by the refused requests.
    expect((await f.api("GET", "ros2/config")).code).toBe("FR_ROS2_FLEET_NOT_CONFIGURED");
    expect((await f.api("POST", "ros2/config", {})).status).toBe(200);
    for (const enclave_ttl of [true, ["1h"], "99999999h"]) {
      expect(errorOf(await f.api("POST", "ros2/config", { enclave_ttl }))).toEqual({
        status: 400,
        code: "FR_VALIDATION",
      });
    }
    expect((await f.api("GET", "ros2/config")).data).toMatchObject({ enclave_ttl: 365 * 86_400 });
  });

  it("labels given as an object are checked as they are, not re-parsed from a joined string", async () => {
    const policy =
      '<policy version="0.2.0"><enclaves><enclave path="/ns/node"><profiles><profile ns="/" node="n">' +
      '<topics publish="ALLOW"><topic>chatter</topic></topics></profile></profiles></enclave></enclaves></policy>';
    expect((await f.api("POST", "ros2/policies/p1", { policy, extra: 1 })).code).toBe("FR_VALIDATION");
    expect((await f.api("POST", "ros2/policies/p1", { policy })).status).toBe(200);
    // Before: {"a": "x,b=c"} was stored as the two labels a=x and b=c; {"a": {"b": 1}} as a="[object Object]".
    const ok = await f.api("POST", "ros2/assignments/a1", { policy: "p1", labels: { a: "x,b=c" } });
    expect(ok.data).toMatchObject({ labels: { a: "x,b=c" } });
    for (const labels of [{ a: { b: 1 } }, { a: 5 }]) {
      expect(errorOf(await f.api("POST", "ros2/assignments/a2", { policy: "p1", labels }))).toEqual({
        status: 400,
        code: "FR_VALIDATION",
      });
    }
    expect((await f.api("GET", "ros2/assignments/a2")).status).toBe(404);
  });
});

describe("updates routes", () => {
  // f.dir is the server's data_dir: keys named in requests go under its keys/ (keys.file_dirs default).
  const key = (n: string) => [{ uri: `file:${join(f.dir, "keys", `routes-${n}.pem`)}`, generate: "ed25519" }];
  const get = async (path: string) => {
    const r = await f.t.call("GET", `updates/r/${path}`);
    return { status: r.statusCode, body: r.body };
  };

  beforeAll(async () => {
    const init = await f.api("POST", "updates/r/init", {
      keys: { root: key("root"), targets: key("t"), snapshot: key("s"), timestamp: key("ts") },
    });
    expect(init.status, JSON.stringify(init)).toBe(200);
  });

  it("a target whose name looks hash-prefixed is served by its own path, not as another blob", async () => {
    const hello = createHash("sha256").update("hello").digest("hex");
    const tricky = `${hello}.evil`;
    const put = (path: string, text: string) =>
      f.api("PUT", `updates/r/targets/${path}`, { content_base64: Buffer.from(text).toString("base64") });
    expect((await put("dir/a.txt", "hello")).status).toBe(200);
    expect((await put(tricky, "evil")).status).toBe(200);
    expect((await f.api("POST", "updates/r/publish")).status).toBe(200);
    expect(await get(`targets/${tricky}`)).toEqual({ status: 200, body: "evil" }); // was "hello"
    expect(await get(`targets/dir/${hello}.a.txt`)).toEqual({ status: 200, body: "hello" });
  });

  it("content_base64 that is not base64 is refused, not stored as other bytes", async () => {
    const r = await f.api("PUT", "updates/r/targets/j.txt", { content_base64: "!!!notbase64" });
    expect(errorOf(r)).toEqual({ status: 400, code: "FR_VALIDATION" });
    expect((await get("targets/j.txt")).status).toBe(404);
  });

  it("rotate-key removing a key the role does not have is refused, and no root version is made", async () => {
    const r = await f.api("POST", "updates/r/rotate-key", { role: "timestamp", remove: ["a".repeat(64)] });
    expect(errorOf(r)).toEqual({ status: 400, code: "FR_UPDATES_KEY" });
    expect((await get("metadata/2.root.json")).status).toBe(404);
  });
});

describe("fleetroot device", () => {
  it("malformed list filters and duplicate labels are usage errors (exit 2); show is get", async () => {
    const env = { FLEETROOT_ADDR: f.url, FLEETROOT_TOKEN: f.root };
    for (const args of [
      ["device", "list", "-l", "foo"],
      ["device", "list", "-l", "=x"],
      ["device", "list", "--limit", "abc"],
      ["device", "list", "--status", "bogus"],
      ["device", "labels", "d1", "a=b", "a=c"],
    ]) {
      const r = await cli(args, env);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
    }
    const missing = await cli(["device", "show", "nope"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("FR_DEVICE_NOT_FOUND");
    const list = await cli(["-f", "json", "device", "list", "-l", "a=b"], env);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({ data: { devices: [] } });
  });
});
