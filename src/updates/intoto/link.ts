import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { fail } from "../../errors/index.js";
import type { TufSigner } from "../keys.js";
import { addSignaturesTo } from "./sign.js";
import type { Artifacts, Link, Metablock } from "./types.js";

const maxFiles = 100_000;

/** sha256 of each file under the given paths (files or directories), keyed by `/`-separated relative path. */
export async function hashArtifacts(paths: readonly string[], cwd: string): Promise<Artifacts> {
  const out: Artifacts = {};
  const visit = async (rel: string) => {
    const abs = path.resolve(cwd, rel);
    const st = await fs.stat(abs).catch(() => undefined);
    if (!st) return;
    if (st.isDirectory()) {
      for (const e of (await fs.readdir(abs)).sort()) await visit(path.join(rel, e));
    } else if (st.isFile()) {
      if (Object.keys(out).length >= maxFiles) fail("FR_UPDATES_INTOTO", `more than ${maxFiles} artifacts`);
      const key = path.normalize(rel).split(path.sep).join("/");
      out[key] = {
        sha256: crypto
          .createHash("sha256")
          .update(await fs.readFile(abs))
          .digest("hex"),
      };
    }
  };
  for (const p of paths) await visit(p);
  return out;
}

/** The file name in-toto looks links up by: `<step>.<first 8 hex of keyid>.link`. */
export function linkFileName(step: string, keyid: string): string {
  return `${step}.${keyid.slice(0, 8)}.link`;
}

/**
 * Records a step like in-toto-run: hash materials, run the command, hash products, sign the link. The
 * command's output is kept as byproducts (bounded); a failing command still yields a link (its return value).
 */
export async function runStep(opts: {
  step: string;
  command: string[];
  materials: string[];
  products: string[];
  cwd: string;
  signer: TufSigner;
}): Promise<{ link: Metablock<Link>; fileName: string }> {
  const materials = await hashArtifacts(opts.materials, opts.cwd);
  const by = opts.command.length ? await run(opts.command, opts.cwd) : { code: 0, stdout: "", stderr: "" };
  const products = await hashArtifacts(opts.products, opts.cwd);
  const link: Link = {
    _type: "link",
    name: opts.step,
    command: opts.command,
    materials,
    products,
    byproducts: { "return-value": by.code, stdout: by.stdout, stderr: by.stderr },
    environment: {},
  };
  return {
    link: await addSignaturesTo({ signed: link, signatures: [] }, [opts.signer]),
    fileName: linkFileName(opts.step, opts.signer.keyid),
  };
}

const maxOutput = 64 * 1024;

function run(cmd: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout = (stdout + d.toString()).slice(0, maxOutput)));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(0, maxOutput)));
    child.on("error", (e) => reject(new Error(`cannot run ${cmd[0]}: ${e.message}`)));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
