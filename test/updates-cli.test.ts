import crypto from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyManager } from "../src/keys/index.js";
import { parseEnvelope, tufKeyFromSpki } from "../src/updates/index.js";
import { cli } from "./helpers/cli.js";
import { startUpdatesFixture, type UpdatesFixture } from "./updates-fixture.js";

let f: UpdatesFixture;
let env: Record<string, string>;
let dir: string;
const ok = async (args: string[], opts: { cwd?: string } = {}) => {
  const r = await cli(args, env, { timeoutMs: 60_000, ...opts });
  expect(r.code, `fleetroot ${args.join(" ")}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
};
const pem = (spki: Uint8Array) =>
  crypto
    .createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" })
    .export({ type: "spki", format: "pem" })
    .toString();

beforeAll(async () => {
  f = await startUpdatesFixture();
  env = { FLEETROOT_ADDR: f.url, FLEETROOT_TOKEN: f.token };
  dir = mkdtempSync(join(tmpdir(), "fr-updates-cli-"));
}, 60_000);

afterAll(async () => {
  await f?.close();
});

describe("fleetroot updates / agent CLI", () => {
  it("publishes signed configuration that the agent applies only where it is meant to", async () => {
    const args = ["updates", "init", "cfg", "--generate", "ed25519"];
    for (const role of ["root", "targets", "snapshot", "timestamp"])
      args.push(`--${role}-key`, f.key(`cli-${role}`));
    await ok(args);
    writeFileSync(join(dir, "robot.yaml"), "speed_limit: 2\nzones: [a, b]\n");
    await ok([
      "updates",
      "add",
      "cfg",
      "devices/robot.yaml",
      join(dir, "robot.yaml"),
      "--config-for-label",
      "arm",
    ]);
    // Added but not yet published: status says which roles changed.
    const before = await ok(["updates", "status", "cfg"]);
    expect(before).toMatch(/^targets\s+v1 .*CHANGED$/m);
    expect(before).toContain("note: targets changed since the last version and not yet published");
    await ok(["updates", "publish", "cfg"]);
    const status = await ok(["updates", "status", "cfg"]);
    expect(status).toMatch(/timestamp\s+v\d+/);
    expect(status).not.toContain("CHANGED");
    const root = await fetch(`${f.url}/v1/updates/cfg/metadata/1.root.json`);
    writeFileSync(join(dir, "root.json"), Buffer.from(await root.arrayBuffer()));
    const base = [
      "agent",
      "config",
      "--repo",
      `${f.url}/v1/updates/cfg`,
      "--target",
      "devices/robot.yaml",
      "--root",
      join(dir, "root.json"),
      "--metadata-dir",
      join(dir, "md"),
      "--device",
      "r1",
      "--format",
      "json",
    ];
    const other = JSON.parse(
      await ok([...base, "--out", join(dir, "etc", "other.yaml"), "--label", "camera"]),
    ) as { applied: boolean };
    expect(other.applied).toBe(false);
    expect(existsSync(join(dir, "etc", "other.yaml"))).toBe(false);
    const mine = JSON.parse(
      await ok([...base, "--out", join(dir, "etc", "robot.yaml"), "--label", "arm"]),
    ) as { applied: boolean };
    expect(mine.applied).toBe(true);
    expect(readFileSync(join(dir, "etc", "robot.yaml"), "utf8")).toBe("speed_limit: 2\nzones: [a, b]\n");
  });

  it("ships the repository's trusted root at enrollment (agent enroll --updates-repo)", async () => {
    const api = async (path: string, body: unknown) => {
      const r = await fetch(`${f.url}/v1/${path}`, {
        method: "POST",
        headers: { "x-vault-token": f.token, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(r.status, `${path}: ${await r.clone().text()}`).toBeLessThan(300);
      return (await r.json().catch(() => ({}))) as { data?: Record<string, unknown> };
    };
    await api("pki/root/generate/internal", { common_name: "Updates Fleet Root", ttl: "8760h" });
    await api("pki/roles/device", {
      allow_any_name: true,
      enforce_hostnames: false,
      allowed_uri_sans: ["urn:fleetroot:device:*"],
      key_type: "any",
      server_flag: false,
      client_flag: true,
    });
    await api("fleet/provisioners/factory", { type: "join-token", role: "device" });
    const token = async () => (await api("fleet/provisioners/factory/tokens", {})).data!.token as string;

    // A repository that does not exist: refused before enrolling, nothing written.
    const bad = await cli(
      [
        "agent",
        "enroll",
        "--server",
        f.url,
        "--provisioner",
        "factory",
        "--token",
        await token(),
        "--out",
        join(dir, "dev-bad"),
        "--updates-repo",
        "no-such-repo",
      ],
      {},
      { timeoutMs: 60_000 },
    );
    expect(bad.code).toBe(1);
    expect(existsSync(join(dir, "dev-bad"))).toBe(false);

    const out = join(dir, "dev-1");
    await ok([
      "agent",
      "enroll",
      "--server",
      f.url,
      "--provisioner",
      "factory",
      "--token",
      await token(),
      "--out",
      out,
      "--updates-repo",
      "cfg",
    ]);
    const served = Buffer.from(
      await (await fetch(`${f.url}/v1/updates/cfg/metadata/1.root.json`)).arrayBuffer(),
    );
    const shipped = join(out, "tuf", "cfg", "root.json");
    expect(readFileSync(shipped).equals(served)).toBe(true);
    const applied = JSON.parse(
      await ok([
        "agent",
        "config",
        "--repo",
        `${f.url}/v1/updates/cfg`,
        "--target",
        "devices/robot.yaml",
        "--root",
        shipped,
        "--metadata-dir",
        join(out, "tuf", "cfg", "md"),
        "--device",
        "r1",
        "--label",
        "arm",
        "--out",
        join(out, "etc", "robot.yaml"),
        "--format",
        "json",
      ]),
    ) as { applied: boolean };
    expect(applied.applied).toBe(true);
  });

  it("runs the offline signing flow: export, sign elsewhere with a threshold of keys, import", async () => {
    const keys = createKeyManager();
    const offline = await keys.generate(`file:${join(dir, "offline.pem")}`, "ed25519");
    await keys.close();
    writeFileSync(join(dir, "offline.pub"), pem(offline.publicKey));
    await ok([
      "updates",
      "rotate-key",
      "cfg",
      "targets",
      "--add-pubkey",
      join(dir, "offline.pub"),
      "--threshold",
      "2",
    ]);
    writeFileSync(join(dir, "robot2.yaml"), "speed_limit: 3\n");
    await ok([
      "updates",
      "add",
      "cfg",
      "devices/robot.yaml",
      join(dir, "robot2.yaml"),
      "--config-for-device",
      "r1",
    ]);
    const pub = JSON.parse(await ok(["updates", "publish", "cfg", "--format", "json"])) as {
      pending: Array<{ role: string }>;
    };
    expect(pub.pending.map((p) => p.role)).toEqual(["targets"]);
    await ok(["updates", "export", "cfg", "targets", "-o", join(dir, "targets.json")]);
    expect(parseEnvelope(readFileSync(join(dir, "targets.json")), "targets").signatures).toHaveLength(1);
    await ok(["updates", "sign", join(dir, "targets.json"), "-k", `file:${join(dir, "offline.pem")}`]);
    const imp = JSON.parse(
      await ok(["updates", "import", "cfg", join(dir, "targets.json"), "--format", "json"]),
    ) as { published: Array<{ role: string }> };
    expect(imp.published.map((p) => p.role)).toEqual(["targets", "snapshot", "timestamp"]);
    const applied = JSON.parse(
      await ok([
        "agent",
        "config",
        "--repo",
        `${f.url}/v1/updates/cfg`,
        "--target",
        "devices/robot.yaml",
        "--root",
        join(dir, "root.json"),
        "--metadata-dir",
        join(dir, "md"),
        "--device",
        "r1",
        "--out",
        join(dir, "etc", "robot.yaml"),
        "--format",
        "json",
      ]),
    ) as { applied: boolean };
    expect(applied.applied).toBe(true);
    expect(readFileSync(join(dir, "etc", "robot.yaml"), "utf8")).toBe("speed_limit: 3\n");
  });

  it("records in-toto links, signs a layout, verifies, and ships them with a target", async () => {
    const keys = createKeyManager();
    const owner = await keys.generate(`file:${join(dir, "owner.pem")}`, "ed25519");
    const builder = await keys.generate(`file:${join(dir, "builder.pem")}`, "ed25519");
    await keys.close();
    writeFileSync(join(dir, "owner.pub"), JSON.stringify(tufKeyFromSpki(owner.publicKey, { intoto: true })));
    writeFileSync(join(dir, "builder.pub"), pem(builder.publicKey));
    const work = join(dir, "work");
    mkdirSync(join(work, "src"), { recursive: true });
    writeFileSync(join(work, "src", "main.txt"), "main\n");
    await ok(
      [
        "updates",
        "intoto",
        "run",
        "--step",
        "build",
        "-k",
        `file:${join(dir, "builder.pem")}`,
        "-m",
        "src",
        "-p",
        "app.bin",
        "-d",
        join(dir, "links"),
        "--",
        "sh",
        "-c",
        "cp src/main.txt app.bin",
      ],
      { cwd: work },
    );
    writeFileSync(
      join(dir, "layout.yaml"),
      [
        "expires: '2099-01-01T00:00:00Z'",
        "steps:",
        "  - name: build",
        "    functionaries: [builder.pub]",
        "    materials: [[ALLOW, 'src/*'], [DISALLOW, '*']]",
        "    products: [[CREATE, app.bin], [DISALLOW, '*']]",
        "inspections:",
        "  - name: check",
        "    run: ['true']",
        "    materials: [[MATCH, app.bin, WITH, PRODUCTS, FROM, build], [DISALLOW, '*']]",
        "    products: [[MATCH, app.bin, WITH, PRODUCTS, FROM, build], [DISALLOW, '*']]",
      ].join("\n"),
    );
    await ok([
      "updates",
      "intoto",
      "layout",
      join(dir, "layout.yaml"),
      "-k",
      `file:${join(dir, "owner.pem")}`,
      "-o",
      join(dir, "root.layout"),
    ]);
    await ok([
      "updates",
      "intoto",
      "verify",
      "-l",
      join(dir, "root.layout"),
      "-k",
      join(dir, "owner.pub"),
      "--link-dir",
      join(dir, "links"),
      join(work, "app.bin"),
    ]);
    const { readdirSync } = await import("node:fs");
    const link = join(dir, "links", readdirSync(join(dir, "links"))[0]!);
    await ok([
      "updates",
      "add",
      "cfg",
      "apps/app.bin",
      join(work, "app.bin"),
      "--intoto-layout",
      join(dir, "root.layout"),
      "--intoto-link",
      link,
    ]);
    // targets needs the offline key too (threshold 2 since the previous test).
    await ok(["updates", "publish", "cfg"]);
    await ok(["updates", "export", "cfg", "targets", "-o", join(dir, "t2.json")]);
    await ok(["updates", "sign", join(dir, "t2.json"), "-k", `file:${join(dir, "offline.pem")}`]);
    await ok(["updates", "import", "cfg", join(dir, "t2.json")]);
    const agent = [
      "agent",
      "update",
      "--repo",
      `${f.url}/v1/updates/cfg`,
      "--target",
      "apps/app.bin",
      "--root",
      join(dir, "root.json"),
      "--metadata-dir",
      join(dir, "md"),
      "--out",
      join(dir, "out"),
    ];
    const noKey = await cli(agent, env, { timeoutMs: 60_000 });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/in-toto layout/);
    await ok([...agent, "--layout-key", join(dir, "owner.pub")]);
    expect(readFileSync(join(dir, "out", "app.bin"), "utf8")).toBe("main\n");
  });

  it("refuses bad flags and files with one clear line, the right exit code, and nothing written", async () => {
    const bad = async (args: string[], code: number, message: RegExp) => {
      const r = await cli(args, env, { timeoutMs: 60_000 });
      expect(r.code, `fleetroot ${args.join(" ")}\n${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at |TypeError|Cannot read/);
    };
    const init = ["updates", "init", "new", "--generate", "ed25519"];
    for (const role of ["root", "targets", "snapshot", "timestamp"])
      init.push(`--${role}-key`, f.key(`new-${role}`));
    await bad(init.slice(0, 7), 2, /give --targets-key URI or --targets-pubkey FILE/);
    // An impossible threshold used to be found only after every key had been generated.
    await bad(
      [...init, "--threshold", "root=2"],
      1,
      /threshold 2 must be between 1 and its 1.*FR_UPDATES_ROLE/,
    );
    expect(existsSync(f.key("new-root").slice("file:".length))).toBe(false);
    const t2 = join(dir, "t2.json");
    const before = readFileSync(t2);
    // Signing with no key used to rewrite the file with no new signature and exit 0.
    await bad(["updates", "sign", t2], 2, /required option '-k, --key/);
    expect(readFileSync(t2)).toEqual(before);
    writeFileSync(join(dir, "broken.json"), "{bad");
    writeFileSync(join(dir, "null.json"), "null");
    await bad(
      ["updates", "sign", join(dir, "broken.json"), "-k", f.key("x")],
      1,
      /broken\.json is not valid JSON/,
    );
    await bad(["updates", "sign", join(dir, "null.json"), "-k", f.key("x")], 1, /not TUF metadata/);
    await bad(["updates", "import", "cfg", join(dir, "broken.json")], 1, /broken\.json is not valid JSON/);
    const file = join(dir, "robot.yaml");
    await bad(
      ["updates", "add", "cfg", "x.yaml", file, "--custom", "null"],
      2,
      /--custom must be a JSON object/,
    );
    await bad(
      ["updates", "add", "cfg", "x.yaml", file, "--custom", "[1]"],
      2,
      /--custom must be a JSON object/,
    );
    // `..` would be resolved away in the URL and reach another route ("no secrets engine is mounted").
    await bad(["updates", "add", "cfg", "../x.yaml", file], 2, /target path "\.\.\/x\.yaml"/);
    await bad(["updates", "remove", "cfg", "a/./b"], 2, /target path/);
    const key = ["--key", f.key("cli-targets")];
    await bad(
      ["updates", "delegate", "cfg", "d", ...key, "--paths", "a/*", "--threshold", "two"],
      2,
      /--threshold must be a whole number/,
    );
    await bad(
      ["updates", "delegate", "cfg", ...key, "--hash-bins", "x"],
      2,
      /--hash-bins must be a whole number/,
    );
    await bad(["updates", "delegate", "cfg", "d", "--paths", "a/*"], 2, /give --key or --pubkey/);
    await bad(
      ["updates", "rotate-key", "cfg", "targets", "--threshold", "2x"],
      2,
      /--threshold must be a whole number/,
    );
    // A layout without a key used to be written unsigned.
    await bad(
      ["updates", "intoto", "layout", join(dir, "layout.yaml"), "-o", join(dir, "unsigned.layout")],
      2,
      /required option '-k, --key/,
    );
    expect(existsSync(join(dir, "unsigned.layout"))).toBe(false);
    writeFileSync(join(dir, "empty.yaml"), "");
    await bad(
      ["updates", "intoto", "layout", join(dir, "empty.yaml"), "-k", f.key("x"), "-o", join(dir, "e.layout")],
      1,
      /must be a YAML mapping/,
    );
    const verify = [
      "updates",
      "intoto",
      "verify",
      "-l",
      join(dir, "root.layout"),
      "-k",
      join(dir, "owner.pub"),
    ];
    // A final product that is not there used to pass verification.
    await bad(
      [...verify, "--link-dir", join(dir, "links"), join(dir, "no-such.bin")],
      1,
      /final product .*no-such\.bin is not a file/,
    );
    await bad(
      [...verify, "--link-dir", join(dir, "no-links"), join(dir, "work", "app.bin")],
      1,
      /cannot read --link-dir/,
    );
  }, 180_000); // about thirty CLI runs in a row: 25 s on an idle machine, more beside the rest of the suite
});
