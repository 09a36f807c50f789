import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseYamlDocument } from "../../config/load.js";
import { client, dataOf, globals } from "../context.js";
import { CliError, print } from "../output.js";

const collect = (v: string, prev: string[]) => [...prev, v];

function labelsOf(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of pairs) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new CliError(`label "${kv}" must be key=value`, 2);
    const key = kv.slice(0, i);
    if (Object.hasOwn(out, key)) throw new CliError(`label "${key}" is given twice`, 2);
    out[key] = kv.slice(i + 1);
  }
  return out;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new CliError(
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

const seg = (s: string) => encodeURIComponent(s);

/**
 * Prints a server response: with --format json the whole Vault envelope (as `ca`, `kv`, `policy` and `token`
 * do), otherwise `table` (by default the envelope's data).
 */
function show(cmd: Command, res: Record<string, unknown>, table: unknown = dataOf(res)): void {
  const g = globals(cmd);
  if (g.format === "json") return print(res, "json");
  print(table, g.format);
}
const statuses = ["pending", "active", "suspended", "decommissioned"];

/** `fleetroot device …`: the device registry, provisioners, join tokens and registered identities. */
export function deviceCommands(program: Command): void {
  const dev = program
    .command("device")
    .description("manage the device registry, provisioners and enrollment credentials");

  dev
    .command("list")
    .description("list devices (filters combine; pages with --after)")
    .option("--status <status>", "pending, active, suspended or decommissioned")
    .option("--provisioner <name>", "the provisioner that enrolled them")
    .option("-l, --label <key=value>", "label filter (repeatable)", collect, [])
    .option("--name-prefix <prefix>", "device names starting with this")
    .option("--limit <n>", "page size (1-1000)", "100")
    .option("--after <id>", "continue after this device id (the previous page's `next`)")
    .action(async (o: Record<string, string | string[] | undefined>, cmd: Command) => {
      // Malformed flags are usage errors (exit 2) here, as in `device labels`, not refusals from the server.
      if (o.status && !statuses.includes(o.status as string))
        throw new CliError(`--status must be one of ${statuses.join(", ")}`, 2);
      if (o.limit && !/^\d+$/.test(o.limit as string))
        throw new CliError("--limit must be a whole number (1-1000)", 2);
      labelsOf(o.label as string[]);
      const q = new URLSearchParams();
      if (o.status) q.set("status", o.status as string);
      if (o.provisioner) q.set("provisioner", o.provisioner as string);
      if ((o.label as string[]).length) q.set("label", (o.label as string[]).join(","));
      if (o.namePrefix) q.set("name_prefix", o.namePrefix as string);
      if (o.limit) q.set("limit", o.limit as string);
      if (o.after) q.set("after", o.after as string);
      const res = await client(cmd).json("GET", `fleet/devices?${q.toString()}`);
      const g = globals(cmd);
      if (g.format === "json") return print(res, "json");
      const d = dataOf(res) as {
        devices: {
          id: string;
          name: string;
          status: string;
          enrollment_method: string | null;
          last_seen: string | null;
        }[];
        next: string | null;
      };
      for (const x of d.devices) {
        process.stdout.write(
          `${x.id}\t${x.status}\t${x.enrollment_method ?? "-"}\t${x.last_seen ?? "-"}\t${x.name}\n`,
        );
      }
      if (d.next) process.stderr.write(`(more: --after ${d.next})\n`);
    });

  dev
    .command("get")
    .alias("show")
    .description("show a device, its labels and its certificates")
    .argument("<id>", "device id")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const g = globals(cmd);
      const res = await client(cmd).json("GET", `fleet/devices/${seg(id)}`);
      const d = dataOf(res);
      if (g.format === "pem") {
        if (typeof d.certificate !== "string") throw new CliError(`device ${id} has no current certificate`);
        process.stdout.write(d.certificate);
        return;
      }
      show(cmd, res, { ...d, certificate: d.certificate ? "(PEM; use --format pem)" : null });
    });

  dev
    .command("labels")
    .description("replace a device's labels")
    .argument("<id>", "device id")
    .argument("[labels...]", "key=value pairs (none clears every label)")
    .action(async (id: string, pairs: string[], _o: unknown, cmd: Command) => {
      show(
        cmd,
        await client(cmd).json("POST", `fleet/devices/${seg(id)}/labels`, { labels: labelsOf(pairs) }),
      );
    });

  for (const [verb, what] of [
    ["suspend", "suspend a device: renewal and enrollment are refused until it is resumed"],
    ["resume", "resume a suspended device"],
    ["decommission", "decommission a device: every certificate is revoked (CRL and OCSP at once), for good"],
  ] as const) {
    dev
      .command(verb)
      .description(what)
      .argument("<id>", "device id")
      .action(async (id: string, _o: unknown, cmd: Command) => {
        show(cmd, await client(cmd).json("POST", `fleet/devices/${seg(id)}/${verb}`));
      });
  }

  const token = dev.command("token").description("join tokens for join-token provisioners");
  token
    .command("create")
    .description("create a single-use join token (shown once; stored hashed on the server)")
    .requiredOption("-p, --provisioner <name>", "join-token provisioner")
    .option("--device-id <id>", "bind the token to this device id (a pending device is created)")
    .option("--name <name>", "the device's display name (with --device-id)")
    .option("-l, --label <key=value>", "the device's labels (with --device-id; repeatable)", collect, [])
    .option("--ttl <duration>", "token lifetime, e.g. 15m (default: the provisioner's token_ttl)")
    .action(
      async (
        o: { provisioner: string; deviceId?: string; name?: string; label: string[]; ttl?: string },
        cmd: Command,
      ) => {
        const body: Record<string, unknown> = {};
        if (o.deviceId) body.device_id = o.deviceId;
        if (o.name) body.name = o.name;
        if (o.label.length) body.labels = labelsOf(o.label);
        if (o.ttl) body.ttl = o.ttl;
        show(cmd, await client(cmd).json("POST", `fleet/provisioners/${seg(o.provisioner)}/tokens`, body));
      },
    );

  const prov = dev.command("provisioner").description("provisioners: how devices prove what they are");
  prov
    .command("write")
    .description("create or update a provisioner from a JSON/YAML definition (docs/devices.md)")
    .argument("<name>", "provisioner name")
    .requiredOption("--config <file>", 'definition, e.g. {"type": "join-token", "role": "device"}')
    .action(async (name: string, o: { config: string }, cmd: Command) => {
      const text = readText(o.config, "provisioner definition");
      let body: unknown;
      try {
        body = parseYamlDocument(text);
      } catch (e) {
        throw new CliError(`${o.config}: ${(e as Error).message}`);
      }
      show(cmd, await client(cmd).json("POST", `fleet/provisioners/${seg(name)}`, body));
    });
  prov
    .command("list")
    .description("list provisioners")
    .action(async (_o: unknown, cmd: Command) => {
      const res = await client(cmd).json("GET", "fleet/provisioners");
      show(cmd, res, dataOf(res).keys ?? []);
    });
  prov
    .command("read")
    .description("show a provisioner's definition")
    .argument("<name>", "provisioner name")
    .action(async (name: string, _o: unknown, cmd: Command) =>
      show(cmd, await client(cmd).json("GET", `fleet/provisioners/${seg(name)}`)),
    );
  prov
    .command("delete")
    .description("delete a provisioner")
    .argument("<name>", "provisioner name")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await client(cmd).json("DELETE", `fleet/provisioners/${seg(name)}`);
      process.stdout.write(`Success! Deleted provisioner: ${name}\n`);
    });

  dev
    .command("register-key")
    .description("register a device's public key with a registered-key provisioner")
    .requiredOption("-p, --provisioner <name>", "registered-key provisioner")
    .requiredOption("--device-id <id>", "device id")
    .requiredOption("--public-key <file>", "PEM public key")
    .action(async (o: { provisioner: string; deviceId: string; publicKey: string }, cmd: Command) => {
      const body = { device_id: o.deviceId, public_key: readText(o.publicKey, "public key") };
      show(cmd, await client(cmd).json("POST", `fleet/provisioners/${seg(o.provisioner)}/keys`, body));
    });

  dev
    .command("register-attestation-key")
    .description("register a PSA attestation key by instance id with a psa provisioner")
    .requiredOption("-p, --provisioner <name>", "psa provisioner")
    .requiredOption("--instance-id <hex>", "33-byte PSA instance id (hex, starting 01)")
    .requiredOption("--device-id <id>", "device id")
    .requiredOption("--public-key <file>", "PEM attestation public key")
    .action(
      async (
        o: { provisioner: string; instanceId: string; deviceId: string; publicKey: string },
        cmd: Command,
      ) => {
        const body = {
          instance_id: o.instanceId,
          device_id: o.deviceId,
          public_key: readText(o.publicKey, "public key"),
        };
        show(
          cmd,
          await client(cmd).json("POST", `fleet/provisioners/${seg(o.provisioner)}/attestation-keys`, body),
        );
      },
    );

  const mfr = dev.command("manufacturer").description("manufacturer CAs for x509 (IDevID) provisioners");
  mfr
    .command("write")
    .description("register or replace a manufacturer CA and its optional CRL")
    .argument("<name>", "manufacturer name")
    .requiredOption("--cert <file>", "manufacturer CA certificate (PEM)")
    .option("--crl <file>", "the manufacturer's CRL (PEM, X509 CRL)")
    .action(async (name: string, o: { cert: string; crl?: string }, cmd: Command) => {
      const body: Record<string, unknown> = { certificate: readText(o.cert, "certificate") };
      if (o.crl) body.crl = readText(o.crl, "CRL");
      show(cmd, await client(cmd).json("POST", `fleet/manufacturers/${seg(name)}`, body));
    });
  mfr
    .command("list")
    .description("list manufacturers")
    .action(async (_o: unknown, cmd: Command) => {
      const res = await client(cmd).json("GET", "fleet/manufacturers");
      show(cmd, res, dataOf(res).keys ?? []);
    });
}
