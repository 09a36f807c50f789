/**
 * The server's ros2 routes refuse what `fleetroot ros2 generate` refuses, through the same check
 * (src/ros2/policy.ts, layout.ts `checkEnclaveName`): 400 with the CLI's error code, and nothing stored.
 * Bug: `POST ros2/policies/bad1` answered 200 for an enclave path "../../x", a 5,000-character path and a
 * topic holding U+0001, which generate refused with FR_ROS2_ENCLAVE_NAME.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollDevice } from "../src/agent/enroll.js";
import { ServerRefusal } from "../src/agent/enroll-http.js";
import { obtainRos2Enclave } from "../src/agent/ros2-enclave.js";
import { loadPolicyFile } from "../src/ros2/index.js";
import { type Fleet, startFleet } from "./enroll-fixture.js";
import { cli } from "./helpers/cli.js";

const fleets: Fleet[] = [];
afterAll(async () => {
  for (const f of fleets) {
    await f.close();
    fs.rmSync(f.dir, { recursive: true, force: true });
  }
});

/** A one-enclave policy; the parts are inserted as written (XML text). */
const policy = (o: { enclave?: string; topic?: string } = {}) =>
  `<policy version="0.2.0"><enclaves><enclave path="${o.enclave ?? "/ns/node"}"><profiles>` +
  `<profile ns="/" node="node"><topics publish="ALLOW"><topic>${o.topic ?? "chatter"}</topic></topics>` +
  `</profile></profiles></enclave></enclaves></policy>`;

const deep = policy().replace(
  "</profile>",
  `</profile><metadata>${"<m>".repeat(1000)}${"</m>".repeat(1000)}</metadata>`,
);

/** What the CLI's function says of the same text as a file: its error code, or "accepted". */
function cliCode(dir: string, xml: string): string {
  const file = path.join(dir, "same.policy.xml");
  fs.writeFileSync(file, xml);
  try {
    loadPolicyFile(file);
    return "accepted";
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

const errorOf = (r: Record<string, unknown>) => ({ status: r.status, code: r.code });
const messageOf = (r: Record<string, unknown>) => ((r.errors as string[] | undefined) ?? []).join("; ");

describe("ros2/policies and enclave names, without TLS", () => {
  let f: Fleet;
  beforeAll(async () => {
    f = await startFleet();
    fleets.push(f);
  }, 60_000);

  it("each policy generate refuses is 400 with generate's code; nothing stored, the stored policy kept", async () => {
    const good = policy();
    expect((await f.api("POST", "ros2/policies/bad1", { policy: good })).status).toBe(200);
    const cases: [string, string, RegExp][] = [
      [policy({ enclave: "../../x" }), "FR_ROS2_ENCLAVE_NAME", /"\.\.\/\.\.\/x" is not a fully qualified/],
      [policy({ enclave: `/${"a".repeat(4999)}` }), "FR_ROS2_ENCLAVE_NAME", /5000 characters/],
      [policy({ enclave: "/ns/bad name" }), "FR_ROS2_ENCLAVE_NAME", /"\/ns\/bad name"/],
      [policy({ topic: "chat\u0001ter" }), "FR_ROS2_POLICY_INVALID", /U\+0001 at line 1/],
      [policy({ topic: "chat&#1;ter" }), "FR_ROS2_POLICY_INVALID", /&#1;/],
      [policy({ topic: "t".repeat(1025) }), "FR_ROS2_POLICY_INVALID", /longer than 1024/],
      [deep, "FR_ROS2_POLICY_INVALID", /nested deeper than 64/],
      [
        policy().replace("<policy ", '<policy xmlns="urn:x" '),
        "FR_ROS2_POLICY_INVALID",
        /not <policy> in namespace "urn:x"/,
      ],
    ];
    for (const [xml, code, message] of cases) {
      const shown = xml.slice(0, 120);
      expect(cliCode(f.dir, xml), shown).toBe(code);
      for (const name of ["bad1", "bad2"]) {
        const r = await f.api("POST", `ros2/policies/${name}`, { policy: xml });
        expect(errorOf(r), shown).toEqual({ status: 400, code });
        expect(messageOf(r), shown).toMatch(message);
        expect(messageOf(r).length, shown).toBeLessThan(600);
      }
    }
    // Nothing was stored: bad1 is still the good policy, bad2 does not exist.
    expect((await f.api("GET", "ros2/policies/bad1")).data).toMatchObject({
      policy: good,
      enclaves: ["/ns/node"],
    });
    expect((await f.api("GET", "ros2/policies/bad2")).status).toBe(404);
    expect((await f.api("GET", "ros2/policies")).data).toEqual({ keys: ["bad1"] });
  });

  it("generate refuses the tester's badenc.xml and a U+0001 topic and writes nothing, as the server does (the topic was written into permissions.xml)", async () => {
    for (const [name, xml, why] of [
      ["badenc.xml", policy({ enclave: "../../x" }), /"\.\.\/\.\.\/x".*FR_ROS2_ENCLAVE_NAME/],
      ["ctl.xml", policy({ topic: "chat\u0001ter" }), /U\+0001 at line 1.*FR_ROS2_POLICY_INVALID/],
    ] as const) {
      const file = path.join(f.dir, name);
      fs.writeFileSync(file, xml);
      const ks = path.join(f.dir, `${name}-ks`);
      const r = await cli(["ros2", "generate", "--keystore", ks, "--policy", file]);
      expect([r.code, r.stderr], name).toEqual([1, expect.stringMatching(why)]);
      expect(fs.existsSync(ks), name).toBe(false);
    }
  }, 60_000);

  it("ros2/enclaves/revoke: a bad enclave name is FR_ROS2_ENCLAVE_NAME with a bounded message (was all 5,000 characters)", async () => {
    for (const enclave of ["../../x", `/${"a".repeat(4999)}`, "/a\u0001b"]) {
      const r = await f.api("POST", "ros2/enclaves/revoke", { device_id: "robot-1", enclave });
      expect(errorOf(r), enclave.slice(0, 20)).toEqual({ status: 400, code: "FR_ROS2_ENCLAVE_NAME" });
      expect(messageOf(r).length).toBeLessThan(400);
      expect(messageOf(r)).not.toContain("\u0001");
    }
  });
});

describe("ros2/enclave, over mutual TLS", () => {
  it("a bad enclave name is FR_ROS2_ENCLAVE_NAME before anything else (was: FR_ROS2_FLEET_DENIED for the missing assignment)", async () => {
    const f = await startFleet({ tls: true });
    fleets.push(f);
    expect((await f.api("POST", "ros2/config", {})).status).toBe(200);
    const p = await f.api("POST", "fleet/provisioners/factory", {
      type: "join-token",
      role: "device",
      ttl: "1h",
    });
    expect(p.status, JSON.stringify(p)).toBe(200);
    const t = await f.api("POST", "fleet/provisioners/factory/tokens", { device_id: "robot-1" });
    const identity = path.join(f.dir, "robot-1", "identity");
    await enrollDevice({
      server: f.url,
      provisioner: "factory",
      out: identity,
      caCert: f.tlsCa,
      proof: { type: "token", token: (t.data as { token: string }).token },
    });
    const keystore = path.join(f.dir, "robot-1", "keystore");
    const refusal = async (enclave: string) => {
      try {
        // replace: the agent's own name check is skipped, so the request reaches the server.
        await obtainRos2Enclave({ identity, enclave, keystore, replace: true });
      } catch (e) {
        return e instanceof ServerRefusal ? { status: e.status, code: e.code, length: e.message.length } : e;
      }
      return "accepted";
    };
    for (const enclave of ["../../x", `/${"a".repeat(4999)}`]) {
      expect(await refusal(enclave)).toEqual({
        status: 400,
        code: "FR_ROS2_ENCLAVE_NAME",
        length: expect.any(Number) as number,
      });
    }
    // A good name goes on to the next check: no policy is assigned to the device.
    expect(await refusal("/ns/node")).toMatchObject({ status: 403, code: "FR_ROS2_FLEET_DENIED" });
  }, 60_000);
});
