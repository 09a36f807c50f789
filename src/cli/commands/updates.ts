import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { configCustom } from "../../agent/index.js";
import { createKeyManager } from "../../keys/index.js";
import { mkdirpSync } from "../../util/index.js";
import {
  addSignatures,
  checkTargetPath,
  intoto,
  parseEnvelope,
  serialize,
  tufKeyFromText,
  tufSigner,
} from "../../updates/index.js";
import { client, dataOf, globals } from "../context.js";
import { CliError, checkOutputPath, print, writeOutputFile } from "../output.js";
import { parseYamlDocument } from "../../config/load.js";

// No default for the repeatable options a command needs: commander then refuses the command without one.
const collect = (v: string, prev: string[] = []) => [...prev, v];
const read = (file: string) => {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
};
/** A JSON file's value; the error names the file (JSON.parse's own message does not). */
const readJson = (file: string): unknown => {
  try {
    return JSON.parse(read(file).toString("utf8")) as unknown;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
};
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
/** A whole-number flag value; NaN would reach the server as null and be reported as a missing number. */
const whole = (v: string, flag: string): number => {
  if (!/^\d+$/.test(v)) throw new CliError(`${flag} must be a whole number, not "${v}"`, 2);
  return Number(v);
};
/** Checked here: the URL would resolve `.`/`..` segments away and reach some other route. */
const targetPath = (p: string): string => {
  const problem = checkTargetPath(p);
  if (problem) throw new CliError(`target path ${JSON.stringify(p)}: ${problem}`, 2);
  return p;
};
const enc = (p: string) => targetPath(p).split("/").map(encodeURIComponent).join("/");

/** What --generate may name (the server's list): checked here so a typo is a usage error (exit 2). */
const GENERATE_ALGS = ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"];

/** --key URI (held by the server) and --pubkey FILE (offline) into the API's key list. */
function keySpecs(uris: string[], pubFiles: string[], generate?: string) {
  if (generate !== undefined && !GENERATE_ALGS.includes(generate))
    throw new CliError(`--generate must be one of ${GENERATE_ALGS.join(", ")}, not "${generate}"`, 2);
  return [
    ...uris.map((uri) => ({ uri, ...(generate ? { generate } : {}) })),
    ...pubFiles.map((f) => ({ public: read(f).toString("utf8") })),
  ];
}

function pairs(list: string[], what: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kv of list) {
    const m = /^([a-z]+)=(\d+)$/.exec(kv);
    if (!m) throw new CliError(`${what} takes role=number, not "${kv}"`, 2);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

export function updatesCommands(program: Command): void {
  const up = program
    .command("updates")
    .description("TUF repositories for signed updates and configuration, and in-toto supply-chain metadata");

  const init = up
    .command("init")
    .description(
      "create a TUF repository: keys per role (held by the server, or offline public keys) and thresholds",
    )
    .argument("<repo>", "repository name");
  for (const role of ["root", "targets", "snapshot", "timestamp"]) {
    init
      .option(
        `--${role}-key <uri>`,
        `${role} key URI the server holds (file:, pkcs11:; repeatable)`,
        collect,
        [],
      )
      .option(`--${role}-pubkey <file>`, `${role} offline public key, PEM or JSON (repeatable)`, collect, []);
  }
  init
    .option(
      "--generate <alg>",
      "generate keys missing at their URIs: ed25519, ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072",
    )
    .option("--threshold <role=n>", "signature threshold of a role (repeatable)", collect, [])
    .option(
      "--expires <role=seconds>",
      "metadata lifetime of a role (repeatable; also delegated=…)",
      collect,
      [],
    )
    .option("--no-consistent-snapshot", "serve metadata and targets without version/hash prefixes")
    .action(async (repo: string, o: Record<string, unknown>, cmd: Command) => {
      const keys: Record<string, unknown> = {};
      for (const role of ["root", "targets", "snapshot", "timestamp"]) {
        keys[role] = keySpecs(
          o[`${role}Key`] as string[],
          o[`${role}Pubkey`] as string[],
          o.generate as string | undefined,
        );
        if ((keys[role] as unknown[]).length === 0)
          throw new CliError(`give --${role}-key URI or --${role}-pubkey FILE (every role needs a key)`, 2);
      }
      const body = {
        keys,
        thresholds: pairs(o.threshold as string[], "--threshold"),
        expires: pairs(o.expires as string[], "--expires"),
        consistent_snapshot: o.consistentSnapshot !== false,
      };
      print(dataOf(await client(cmd).json("POST", `updates/${repo}/init`, body)), globals(cmd).format);
    });

  up.command("add")
    .description("add or replace a target file (publish makes it visible)")
    .argument("<repo>", "repository name")
    .argument("<path>", "target path in the repository, e.g. firmware/app-1.2.bin")
    .argument("<file>", "local file with the content")
    .option("--custom <json>", "custom metadata (JSON object) signed with the target")
    .option("--role <name>", "targets role to list it in (default: by delegation paths and hash bins)")
    .option(
      "--config-for-device <id>",
      "mark as signed configuration for this device (repeatable)",
      collect,
      [],
    )
    .option(
      "--config-for-label <label>",
      "mark as signed configuration for devices with this label (repeatable)",
      collect,
      [],
    )
    .option("--intoto-layout <file>", "attach a signed in-toto layout (CNAB 301 style)")
    .option("--intoto-link <file>", "attach an in-toto link (repeatable)", collect, [])
    .option("--attestation <file>", "attach a DSSE attestation envelope (repeatable)", collect, [])
    .action(async (repo: string, p: string, file: string, o: Record<string, unknown>, cmd: Command) => {
      let custom: Record<string, unknown> = {};
      if (o.custom) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(o.custom as string);
        } catch {
          /* reported below */
        }
        if (!isObject(parsed)) throw new CliError("--custom must be a JSON object", 2);
        custom = parsed;
      }
      const devices = o.configForDevice as string[];
      const labels = o.configForLabel as string[];
      if (devices.length || labels.length) {
        Object.assign(
          custom,
          configCustom({ devices, labels, format: /\.json$/i.test(p) ? "json" : "yaml" }),
        );
      }
      if (o.intotoLayout) {
        const links: Record<string, intoto.Metablock<intoto.Link>> = {};
        for (const l of o.intotoLink as string[])
          links[path.basename(l)] = readJson(l) as intoto.Metablock<intoto.Link>;
        const atts = (o.attestation as string[]).map((a) => readJson(a) as intoto.DsseEnvelope);
        Object.assign(
          custom,
          intoto.intotoCustom(
            readJson(o.intotoLayout as string) as intoto.Metablock<intoto.Layout>,
            links,
            atts,
          ),
        );
      }
      targetPath(p);
      const body = {
        content_base64: read(file).toString("base64"),
        ...(Object.keys(custom).length ? { custom } : {}),
        ...(o.role ? { role: o.role } : {}),
      };
      print(
        dataOf(await client(cmd).json("PUT", `updates/${repo}/targets/${enc(p)}`, body)),
        globals(cmd).format,
      );
    });

  up.command("remove")
    .description("remove a target (publish makes the removal visible)")
    .argument("<repo>")
    .argument("<path>")
    .action(async (repo: string, p: string, _o: unknown, cmd: Command) => {
      print(
        dataOf(await client(cmd).json("DELETE", `updates/${repo}/targets/${enc(p)}`)),
        globals(cmd).format,
      );
    });

  up.command("delegate")
    .description(
      "delegate path patterns to a new targets role, or (--hash-bins) all paths to TAP 15 hash bins",
    )
    .argument("<repo>")
    .argument("[name]", "new role name (not for --hash-bins)")
    .option("--parent <role>", "delegating role", "targets")
    .option("--key <uri>", "key URI the server holds (repeatable)", collect, [])
    .option("--pubkey <file>", "offline public key (repeatable)", collect, [])
    .option("--generate <alg>", "generate keys missing at their URIs")
    .option("--threshold <n>", "signature threshold", "1")
    .option("--paths <patterns>", "comma-separated path patterns, e.g. 'robots/*,config/*.yaml'")
    .option("--terminating", "stop the client's search below this role")
    .option("--hash-bins <bits>", "delegate to 2^bits hash bins instead")
    .option("--prefix <prefix>", "hash bin role name prefix", "bins")
    .action(
      async (
        repo: string,
        name: string | undefined,
        o: Record<string, string | boolean | string[]>,
        cmd: Command,
      ) => {
        const body: Record<string, unknown> = {
          parent: o.parent,
          keys: keySpecs(o.key as string[], o.pubkey as string[], o.generate as string | undefined),
          threshold: whole(o.threshold as string, "--threshold"),
        };
        if ((body.keys as unknown[]).length === 0) throw new CliError("give --key or --pubkey", 2);
        if (o.hashBins) {
          if (name) throw new CliError("--hash-bins makes its own role names; leave out the name", 2);
          body.hash_bins = { bit_length: whole(o.hashBins as string, "--hash-bins"), prefix: o.prefix };
        } else {
          if (!name || !o.paths) throw new CliError("give a role name and --paths (or --hash-bins)", 2);
          Object.assign(body, {
            name,
            paths: (o.paths as string).split(","),
            terminating: o.terminating === true,
          });
        }
        print(
          dataOf(await client(cmd).json("POST", `updates/${repo}/delegations`, body)),
          globals(cmd).format,
        );
      },
    );

  up.command("publish")
    .description("sign new versions of changed roles with the server's keys, then snapshot and timestamp")
    .argument("<repo>")
    .action(async (repo: string, _o: unknown, cmd: Command) => {
      print(dataOf(await client(cmd).json("POST", `updates/${repo}/publish`)), globals(cmd).format);
    });

  up.command("rotate-key")
    .description(
      "change a top-level role's keys or threshold; makes a new root version signed by old and new root keys",
    )
    .argument("<repo>")
    .argument("<role>", "root, targets, snapshot or timestamp")
    .option("--add-key <uri>", "key URI to add (repeatable)", collect, [])
    .option("--add-pubkey <file>", "offline public key to add (repeatable)", collect, [])
    .option("--generate <alg>", "generate added keys missing at their URIs")
    .option("--remove <keyid>", "keyid to remove (repeatable)", collect, [])
    .option("--threshold <n>", "new threshold")
    .action(async (repo: string, role: string, o: Record<string, unknown>, cmd: Command) => {
      const body = {
        role,
        add: keySpecs(o.addKey as string[], o.addPubkey as string[], o.generate as string | undefined),
        remove: o.remove,
        ...(o.threshold ? { threshold: whole(o.threshold as string, "--threshold") } : {}),
      };
      print(dataOf(await client(cmd).json("POST", `updates/${repo}/rotate-key`, body)), globals(cmd).format);
    });

  up.command("export")
    .description("write a role's pending (unsigned or partly signed) metadata to a file, to sign offline")
    .argument("<repo>")
    .argument("<role>")
    .requiredOption("-o, --out <file>", "where to write it")
    .action(async (repo: string, role: string, o: { out: string }, cmd: Command) => {
      checkOutputPath(o.out, "--out");
      const env = dataOf(await client(cmd).json("GET", `updates/${repo}/pending/${role}`));
      writeOutputFile(o.out, JSON.stringify(env, null, 1) + "\n", "--out");
      process.stdout.write(`wrote pending ${role} metadata to ${o.out}\n`);
    });

  up.command("sign")
    .description("sign a metadata file offline with local keys (file: or pkcs11: URIs); no server needed")
    .argument("<file>", "metadata exported with `updates export`")
    .requiredOption("-k, --key <uri>", "key URI to sign with (repeatable, for a threshold)", collect)
    .option("-o, --out <file>", "output file (default: in place)")
    .action(async (file: string, o: { key: string[]; out?: string }) => {
      const text = read(file);
      const doc = readJson(file);
      const type = isObject(doc) && isObject(doc.signed) ? doc.signed._type : undefined;
      if (type !== "root" && type !== "targets" && type !== "snapshot" && type !== "timestamp") {
        throw new CliError(`${file} is not TUF metadata (_type ${JSON.stringify(type)})`);
      }
      const env = parseEnvelope(text, type);
      const keys = createKeyManager();
      try {
        const signers = [];
        for (const uri of o.key) signers.push(tufSigner(await keys.open(uri)));
        const out = await addSignatures(env, signers);
        writeOutputFile(o.out ?? file, serialize(out), o.out ? "--out" : "metadata file");
        process.stdout.write(`${o.out ?? file}: ${out.signatures.length} signature(s)\n`);
      } finally {
        await keys.close();
      }
    });

  up.command("import")
    .description("merge signatures made offline into the pending version; publishes it at its threshold")
    .argument("<repo>")
    .argument("<file>")
    .action(async (repo: string, file: string, _o: unknown, cmd: Command) => {
      const metadata = readJson(file);
      print(
        dataOf(await client(cmd).json("POST", `updates/${repo}/import`, { metadata })),
        globals(cmd).format,
      );
    });

  up.command("status")
    .description("roles, versions, expiry, pending versions and which keys the server holds")
    .argument("<repo>")
    .action(async (repo: string, _o: unknown, cmd: Command) => {
      const d = dataOf(await client(cmd).json("GET", `updates/${repo}/status`));
      const g = globals(cmd);
      if (g.format === "json") return print(d, "json");
      process.stdout.write(`repository ${repo}: ${String(d.targets)} target(s)\n`);
      // Clients cannot update from a repository without a timestamp: say what it is waiting for.
      if (d.servable === false) process.stdout.write(`NOT SERVED: ${String(d.waiting)}\n`);
      const roles = d.roles as Array<Record<string, unknown>>;
      for (const r of roles) {
        process.stdout.write(
          `${String(r.role).padEnd(16)} v${String(r.version ?? "-")}  expires ${String(r.expires ?? "-")}  ` +
            `keys ${String(r.heldKeys)}/${String(r.keys)} held, threshold ${String(r.threshold)}` +
            `${r.pendingVersion ? `  PENDING v${String(r.pendingVersion)}` : ""}` +
            `${r.dirty ? "  CHANGED" : ""}\n`,
        );
      }
      // Changed roles: targets added or removed, keys rotated, or a publish cut short before its snapshot.
      const changed = roles.filter((r) => r.dirty).map((r) => String(r.role));
      if (changed.length > 0)
        process.stdout.write(
          `note: ${changed.join(", ")} changed since the last version and not yet published; ` +
            `\`fleetroot updates publish ${repo}\` publishes them (the server's refresh job finishes a ` +
            "snapshot or timestamp left behind within a minute)\n",
        );
    });

  intotoCommands(up);
}

function intotoCommands(up: Command): void {
  const it = up
    .command("intoto")
    .description("in-toto layouts, links and verification (works offline on files)");

  it.command("run")
    .description(
      "run a supply-chain step and record a signed link: fleetroot updates intoto run --step build -k URI -- make",
    )
    .requiredOption("--step <name>", "step name from the layout")
    .requiredOption("-k, --key <uri>", "functionary key URI")
    .option("-m, --materials <path>", "material file or directory (repeatable)", collect, [])
    .option("-p, --products <path>", "product file or directory (repeatable)", collect, [])
    .option("-d, --out-dir <dir>", "where to write <step>.<keyid>.link", ".")
    .argument("[command...]", "the command to run (after --)")
    .action(
      async (
        command: string[],
        o: { step: string; key: string; materials: string[]; products: string[]; outDir: string },
      ) => {
        const keys = createKeyManager();
        try {
          const signer = tufSigner(await keys.open(o.key), { intoto: true });
          const r = await intoto.runStep({
            step: o.step,
            command,
            materials: o.materials,
            products: o.products,
            cwd: process.cwd(),
            signer,
          });
          mkdirpSync(o.outDir);
          const out = path.join(o.outDir, r.fileName);
          writeOutputFile(out, JSON.stringify(r.link, null, 1) + "\n", "link file");
          process.stdout.write(
            `recorded ${out} (return value ${String(r.link.signed.byproducts["return-value"])})\n`,
          );
        } finally {
          await keys.close();
        }
      },
    );

  it.command("layout")
    .description(
      "build and sign a layout from a YAML/JSON description (steps, inspections, rules ending in DISALLOW *)",
    )
    .argument(
      "<spec>",
      "YAML: expires, readme, steps[{name, functionaries: [pubkey files], threshold, expected_command, materials, products}], inspections[{name, run, materials, products}]",
    )
    .requiredOption("-k, --key <uri>", "layout owner key URI (repeatable)", collect)
    .requiredOption("-o, --out <file>", "signed layout file")
    .action(async (spec: string, o: { key: string[]; out: string }) => {
      let d: unknown;
      try {
        d = parseYamlDocument(read(spec).toString());
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError(`${spec}: ${(e as Error).message}`);
      }
      if (!isObject(d)) throw new CliError(`${spec} must be a YAML mapping with expires and steps`);
      const base = path.dirname(spec);
      const steps = ((d.steps ?? []) as Array<Record<string, unknown>>).map((s) => ({
        name: String(s.name),
        functionaries: ((s.functionaries ?? []) as string[]).map((f) =>
          tufKeyFromText(read(path.resolve(base, f)).toString(), { intoto: true }),
        ),
        ...(s.threshold ? { threshold: Number(s.threshold) } : {}),
        ...(s.expected_command ? { expectedCommand: s.expected_command as string[] } : {}),
        materials: (s.materials ?? []) as string[][],
        products: (s.products ?? []) as string[][],
      }));
      const inspections = ((d.inspections ?? []) as Array<Record<string, unknown>>).map((i) => ({
        name: String(i.name),
        run: (i.run ?? []) as string[],
        materials: (i.materials ?? []) as string[][],
        products: (i.products ?? []) as string[][],
      }));
      const layout = intoto.buildLayout({
        expires: String(d.expires),
        readme: String(d.readme ?? ""),
        steps,
        inspections,
      });
      const keys = createKeyManager();
      try {
        const signers = [];
        for (const uri of o.key) signers.push(tufSigner(await keys.open(uri), { intoto: true }));
        const signed = await intoto.signLayout(layout, signers);
        writeOutputFile(o.out, JSON.stringify(signed, null, 1) + "\n", "--out");
        process.stdout.write(`wrote ${o.out}\n`);
      } finally {
        await keys.close();
      }
    });

  it.command("verify")
    .description(
      "verify final product files against a layout and links (inspections' rules apply to the files)",
    )
    .requiredOption("-l, --layout <file>", "signed layout")
    .requiredOption("-k, --layout-key <file>", "layout owner public key, PEM or JSON (repeatable)", collect)
    .option("--link-dir <dir>", "directory with the .link files", ".")
    .argument("<files...>", "final product files (named by base name, as the layout's rules name them)")
    .action(async (files: string[], o: { layout: string; layoutKey: string[]; linkDir: string }) => {
      let names: string[];
      try {
        names = readdirSync(o.linkDir);
      } catch (e) {
        throw new CliError(`cannot read --link-dir ${o.linkDir}: ${(e as NodeJS.ErrnoException).code}`);
      }
      const links = names
        .filter((n) => n.endsWith(".link"))
        .map((n) => readJson(path.join(o.linkDir, n)) as intoto.Metablock<intoto.Link>);
      const finalProduct: intoto.Artifacts = {};
      for (const f of files) {
        // hashArtifacts skips what is not there (as in-toto-run); a product named here must exist.
        if (!statSync(f, { throwIfNoEntry: false })?.isFile())
          throw new CliError(`final product ${f} is not a file`);
        Object.assign(finalProduct, await intoto.hashArtifacts([path.basename(f)], path.dirname(f)));
      }
      intoto.verifyFinalProduct({
        layout: readJson(o.layout) as intoto.Metablock<intoto.Layout>,
        layoutKeys: o.layoutKey.map((k) => tufKeyFromText(read(k).toString(), { intoto: true })),
        links,
        finalProduct,
        now: new Date(),
      });
      process.stdout.write("in-toto verification passed\n");
    });
}
