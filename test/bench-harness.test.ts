import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module (the loader hook needs no build), without type declarations
import { compiledTwin } from "../bench/lib/dist-hooks.mjs";

const root = new URL("../", import.meta.url).href;
const twin = compiledTwin as (url: string, exists?: (u: string) => boolean) => string | undefined;

describe("bench: the compiled-build hook (npm run bench measures .bench-dist/)", () => {
  it("swaps a src/ module for its compiled twin only when the build produced one", () => {
    const all = () => true;
    expect(twin(`${root}src/server/main.ts`, all)).toBe(`${root}.bench-dist/server/main.js`);
    expect(twin(`${root}src/audit/log.ts`, () => false)).toBeUndefined();
    // Not a source module of the server: benchmarks, tests, declarations, packages, node: built-ins.
    expect(twin(`${root}bench/auth.ts`, all)).toBeUndefined();
    expect(twin(`${root}test/cli.test.ts`, all)).toBeUndefined();
    expect(twin(`${root}src/types.d.ts`, all)).toBeUndefined();
    expect(twin(`${root}node_modules/fastify/fastify.js`, all)).toBeUndefined();
    expect(twin("node:fs", all)).toBeUndefined();
  });

  it("resolves through tsx and the hook in a real node process", () => {
    const hook = fileURLToPath(new URL("../bench/lib/use-dist.mjs", import.meta.url));
    const out = execFileSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--import",
        hook,
        "--input-type=module",
        "-e",
        `console.log(import.meta.resolve(${JSON.stringify(`${root}src/util/clock.js`)}))`,
      ],
      { encoding: "utf8", timeout: 60_000 },
    ).trim();
    // A clean clone has no .bench-dist/ (the tests run the sources); after `npm run bench` the twin is taken.
    const built = existsSync(fileURLToPath(`${root}.bench-dist/util/clock.js`));
    expect(out).toBe(built ? `${root}.bench-dist/util/clock.js` : `${root}src/util/clock.ts`);
  });
});
