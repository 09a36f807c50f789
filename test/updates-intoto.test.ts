import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyManager, type KeyManager } from "../src/keys/index.js";
import { intoto, tufSigner, type TufSigner } from "../src/updates/index.js";

const inTotoVerify = "/usr/bin/in-toto-verify";
let keys: KeyManager;
let dir: string;
let owner: TufSigner;
let builder: TufSigner;
let layout: intoto.Metablock<intoto.Layout>;
let link: intoto.Metablock<intoto.Link>;
let linkName: string;
const product = () => join(dir, "product");
const meta = () => join(dir, "meta");

function verifyWithDebian(): { code: number; out: string } {
  const r = spawnSync(
    inTotoVerify,
    [
      "--layout",
      join(meta(), "root.layout"),
      "--layout-keys",
      join(meta(), "owner.pub"),
      "--key-types",
      "ed25519",
      "--link-dir",
      meta(),
    ],
    { cwd: product(), encoding: "utf8", timeout: 60_000 },
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  if (!existsSync(inTotoVerify))
    throw new Error("in-toto-verify is missing: install in-toto (scripts/install-test-deps.sh)");
  dir = mkdtempSync(join(tmpdir(), "fr-intoto-"));
  keys = createKeyManager();
  owner = tufSigner(await keys.generate(`file:${join(dir, "owner.pem")}`, "ed25519"), { intoto: true });
  builder = tufSigner(await keys.generate(`file:${join(dir, "builder.pem")}`, "ed25519"), { intoto: true });
  const work = join(dir, "work");
  mkdirSync(join(work, "src"), { recursive: true });
  writeFileSync(join(work, "src", "hello.txt"), "hello fleet\n");
  const cmd = ["sh", "-c", "cat src/hello.txt > app.bin"];
  const rec = await intoto.runStep({
    step: "build",
    command: cmd,
    materials: ["src"],
    products: ["app.bin"],
    cwd: work,
    signer: builder,
  });
  link = rec.link;
  linkName = rec.fileName;
  const match = ["MATCH", "app.bin", "WITH", "PRODUCTS", "FROM", "build"];
  layout = await intoto.signLayout(
    intoto.buildLayout({
      expires: new Date(Date.now() + 30 * 86400_000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      steps: [
        {
          name: "build",
          functionaries: [builder.key],
          expectedCommand: cmd,
          materials: [
            ["ALLOW", "src/*"],
            ["DISALLOW", "*"],
          ],
          products: [
            ["CREATE", "app.bin"],
            ["DISALLOW", "*"],
          ],
        },
      ],
      inspections: [
        {
          name: "check",
          run: ["true"],
          materials: [match, ["DISALLOW", "*"]],
          products: [match, ["DISALLOW", "*"]],
        },
      ],
    }),
    [owner],
  );
  mkdirSync(meta());
  mkdirSync(product());
  writeFileSync(join(meta(), "root.layout"), JSON.stringify(layout));
  writeFileSync(join(meta(), linkName), JSON.stringify(link));
  writeFileSync(join(meta(), "owner.pub"), JSON.stringify(owner.key));
  writeFileSync(join(product(), "app.bin"), readFileSync(join(work, "app.bin")));
});

afterAll(async () => {
  await keys?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("in-toto layouts and links made by Fleetroot", () => {
  it("Debian's in-toto-verify 1.3.1 accepts them", () => {
    expect(link.signed.products["app.bin"]?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(layout.signed.keys)).toEqual([builder.keyid]);
    expect(layout.signed.keys[builder.keyid]?.keyid).toBe(builder.keyid);
    const r = verifyWithDebian();
    expect(r.code, r.out).toBe(0);
  });

  it("in-toto-verify rejects a tampered product and a modified layout", () => {
    const file = join(product(), "app.bin");
    const good = readFileSync(file);
    writeFileSync(file, "hello evil\n");
    try {
      const r = verifyWithDebian();
      expect(r.code, r.out).toBe(1);
    } finally {
      writeFileSync(file, good);
    }
    const modified = structuredClone(layout);
    modified.signed.steps[0]!.expected_products = [
      ["ALLOW", "*"],
      ["DISALLOW", "*"],
    ];
    writeFileSync(join(meta(), "root.layout"), JSON.stringify(modified));
    try {
      const r = verifyWithDebian();
      expect(r.code, r.out).toBe(1);
    } finally {
      writeFileSync(join(meta(), "root.layout"), JSON.stringify(layout));
    }
    expect(verifyWithDebian().code).toBe(0);
  });

  it("Fleetroot's verifier agrees: accepts the product, rejects tampering", () => {
    const finalProduct = { "app.bin": link.signed.products["app.bin"]! };
    const base = { layout, layoutKeys: [owner.key], links: [link], finalProduct, now: new Date() };
    intoto.verifyFinalProduct(base);
    expect(() =>
      intoto.verifyFinalProduct({ ...base, finalProduct: { "app.bin": { sha256: "00".repeat(32) } } }),
    ).toThrow(/disallowed/);
    expect(() =>
      intoto.verifyFinalProduct({
        ...base,
        finalProduct: { ...finalProduct, "extra.sh": { sha256: "11".repeat(32) } },
      }),
    ).toThrow(/extra\.sh/);
    const modified = structuredClone(layout);
    modified.signed.readme = "changed";
    expect(() => intoto.verifyFinalProduct({ ...base, layout: modified })).toThrow(/not signed/);
    expect(() => intoto.verifyFinalProduct({ ...base, links: [] })).toThrow(/0 valid link/);
    expect(() => intoto.verifyFinalProduct({ ...base, now: new Date(Date.now() + 365 * 86400_000) })).toThrow(
      /expired/,
    );
  });

  it("refuses rule lists that are not closed with DISALLOW *", () => {
    expect(() =>
      intoto.buildLayout({
        expires: "2030-01-01T00:00:00Z",
        steps: [
          {
            name: "s",
            functionaries: [builder.key],
            materials: [["ALLOW", "*"]],
            products: [["DISALLOW", "*"]],
          },
        ],
      }),
    ).toThrow(/DISALLOW/);
  });

  it("signs provenance as an in-toto Statement v1 in a DSSE envelope", async () => {
    const st = intoto.provenanceStatement(
      [{ name: "app.bin", sha256: link.signed.products["app.bin"]!.sha256! }],
      {
        buildDefinition: {
          buildType: "https://fleetroot.dev/intoto-run/v1",
          externalParameters: { step: "build" },
        },
        runDetails: { builder: { id: "fleetroot" } },
      },
    );
    const env = await intoto.signStatement(st, [builder]);
    expect(env.payloadType).toBe("application/vnd.in-toto+json");
    expect(intoto.pae("a", Buffer.from("bc")).toString()).toBe("DSSEv1 1 a 2 bc");
    const back = intoto.verifyStatement(env, { [builder.keyid]: builder.key });
    expect(back.subject[0]?.digest.sha256).toBe(link.signed.products["app.bin"]?.sha256);
    const tampered = {
      ...env,
      payload: Buffer.from(JSON.stringify({ ...st, predicate: {} })).toString("base64"),
    };
    expect(() => intoto.verifyStatement(tampered, { [builder.keyid]: builder.key })).toThrow(/0 valid/);
  });
});
