/**
 * `fleetroot ca …`: the PKI from the command line. Server commands talk to /v1/pki/*; `ca root create`
 * and `ca root sign-intermediate` run offline on files (ca-offline.ts). Commands that output a
 * certificate or CRL honour --format pem (default), der or json.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { crlReasons, derFrom } from "../../crypto/index.js";
import { client, dataOf, globals } from "../context.js";
import { CliError, print, writeOutputFile } from "../output.js";
import { caOfflineCommands } from "./ca-offline.js";

function readText(file: string, what: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (e) {
    throw new CliError(
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/** Certificate output: pem (also for the default table format), der (binary on stdout) or json. */
function printCert(cmd: Command, res: Record<string, unknown>, pemParts: string[], out?: string): void {
  const format = globals(cmd).format;
  if (format === "json") return print(res, "json");
  const first = pemParts[0] ?? "";
  const data: string | Buffer = format === "der" ? derFrom(first) : pemParts.join("");
  if (out) writeOutputFile(out, data, "--out");
  else process.stdout.write(data);
}

const CA_KEY_TYPES = ["ec", "rsa", "ed25519"];

/** The RFC 5280 CRLReason names the server accepts to revoke (removeFromCRL only undoes a hold). */
const REVOKE_REASONS = Object.keys(crlReasons).filter((r) => r !== "removeFromCRL");

/** --reason checked before anything is sent (exit 2); any case, as the server takes it. */
function revokeReason(reason: string): string {
  const name = REVOKE_REASONS.find((r) => r.toLowerCase() === reason.toLowerCase());
  if (!name)
    throw new CliError(
      `--reason "${reason}" is not an RFC 5280 revocation reason; use one of ${REVOKE_REASONS.join(", ")}`,
      2,
    );
  return name;
}

/**
 * --key-type / --key-bits of a CA key, checked before anything is sent (exit 2). Without --key-bits the
 * type's default is used (Vault's key_bits 0: P-256 for ec, 2048 for rsa), so `--key-type rsa` alone works.
 */
function caKeyOptions(o: Record<string, string | undefined>): { key_type: string; key_bits?: number } {
  const type = o.keyType ?? "ec";
  if (!CA_KEY_TYPES.includes(type))
    throw new CliError(`--key-type must be one of ${CA_KEY_TYPES.join(", ")}, not "${type}"`, 2);
  if (o.keyBits === undefined) return { key_type: type };
  if (!/^\d+$/.test(o.keyBits))
    throw new CliError(`--key-bits must be a whole number of bits, not "${o.keyBits}"`, 2);
  return { key_type: type, key_bits: Number(o.keyBits) };
}

/** key=value pairs (lists comma-separated) into a role body; numbers and booleans typed. */
function kvBody(pairs: string[]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const kv of pairs) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new CliError(`"${kv}" is not key=value`, 2);
    const k = kv.slice(0, i);
    const v = kv.slice(i + 1);
    body[k] =
      v === "true"
        ? true
        : v === "false"
          ? false
          : /^-?\d+$/.test(v) && k !== "ttl" && k !== "max_ttl"
            ? Number(v)
            : v;
  }
  return body;
}

export function caCommands(program: Command): void {
  const ca = program
    .command("ca")
    .description("the certificate authority: issuers, roles, issuance, revocation, CRLs");

  ca.command("init")
    .description(
      "create a root CA and an online issuing intermediate on the server (the intermediate becomes the default)",
    )
    .requiredOption(
      "--common-name <cn>",
      "base common name; the CAs are named '<cn> Root CA' and '<cn> Issuing CA'",
    )
    .option("--root-key <uri>", "key URI for the root (default: a sealed software key under the data dir)")
    .option("--intermediate-key <uri>", "key URI for the intermediate")
    .option("--key-type <type>", "ec, rsa or ed25519", "ec")
    .option("--key-bits <n>", "256/384 for ec, 2048/3072 for rsa (default: 256 for ec, 2048 for rsa)")
    .action(async (o: Record<string, string>, cmd: Command) => {
      const key = caKeyOptions(o);
      const c = client(cmd);
      const root = dataOf(
        await c.json("POST", "pki/root/generate/internal", {
          common_name: `${o.commonName} Root CA`,
          ttl: "87600h",
          ...key,
          ...(o.rootKey ? { key_ref: o.rootKey } : {}),
        }),
      );
      const inter = dataOf(
        await c.json("POST", "pki/intermediate/generate/internal", {
          common_name: `${o.commonName} Issuing CA`,
          ...key,
          ...(o.intermediateKey ? { key_ref: o.intermediateKey } : {}),
        }),
      );
      const signed = dataOf(
        await c.json("POST", `pki/issuer/${String(root.issuer_id)}/sign-intermediate`, {
          csr: inter.csr,
          ttl: "43800h",
          max_path_length: 0,
        }),
      );
      const set = dataOf(
        await c.json("POST", "pki/intermediate/set-signed", {
          certificate: String(signed.certificate) + String(signed.issuing_ca),
        }),
      );
      await c.json("POST", "pki/config/issuers", { default: set.issuer_id });
      const out = {
        root_issuer_id: root.issuer_id,
        intermediate_issuer_id: set.issuer_id,
        default: set.issuer_id,
      };
      print(
        globals(cmd).format === "json" ? { ...out, ca_chain: set.ca_chain } : out,
        globals(cmd).format === "json" ? "json" : "table",
      );
    });

  const root = ca
    .command("root")
    .description("offline root ceremony: create a root and sign intermediates on files");
  caOfflineCommands(root);

  const inter = ca
    .command("intermediate")
    .description("intermediates on the server: make a CSR, import the signed certificate");
  inter
    .command("csr")
    .description(
      "generate an intermediate key on the server and print its CSR (sign it offline with `ca root sign-intermediate`)",
    )
    .requiredOption("--common-name <cn>", "the intermediate's common name")
    .option("--issuer-name <name>", "a name for the new issuer")
    .option("--key-ref <uri>", "key URI (default: a sealed software key under the data dir)")
    .option("--key-type <type>", "ec, rsa or ed25519", "ec")
    .option("--key-bits <n>", "256/384 for ec, 2048/3072 for rsa (default: 256 for ec, 2048 for rsa)")
    .option("--out <file>", "write the CSR here instead of stdout")
    .action(async (o: Record<string, string>, cmd: Command) => {
      const key = caKeyOptions(o);
      const res = await client(cmd).json("POST", "pki/intermediate/generate/internal", {
        common_name: o.commonName,
        ...key,
        ...(o.issuerName ? { issuer_name: o.issuerName } : {}),
        ...(o.keyRef ? { key_ref: o.keyRef } : {}),
      });
      printCert(cmd, res, [String(dataOf(res).csr)], o.out);
    });
  inter
    .command("set-signed")
    .description(
      "import the signed intermediate (PEM: the certificate, then its parents) into its pending issuer",
    )
    .argument("<file>", "PEM bundle from `ca root sign-intermediate`, - for stdin")
    .option("--default", "make it the default issuer")
    .action(async (file: string, o: { default?: boolean }, cmd: Command) => {
      const c = client(cmd);
      const res = await c.json("POST", "pki/intermediate/set-signed", {
        certificate: readText(file, "certificate"),
      });
      const d = dataOf(res);
      if (o.default) await c.json("POST", "pki/config/issuers", { default: d.issuer_id });
      print(
        globals(cmd).format === "json" ? res : { issuer_id: d.issuer_id, issuer_name: d.issuer_name },
        globals(cmd).format === "json" ? "json" : "table",
      );
    });

  ca.command("issuers")
    .description("list issuers (the default one is marked)")
    .action(async (_o: unknown, cmd: Command) => {
      const res = await client(cmd).json("LIST", "pki/issuers");
      const g = globals(cmd);
      if (g.format === "json") return print(res, "json");
      const info = (dataOf(res).key_info ?? {}) as Record<
        string,
        { issuer_name: string; is_default: boolean; pending: boolean }
      >;
      for (const [id, i] of Object.entries(info))
        process.stdout.write(
          `${id}  ${i.issuer_name}${i.is_default ? "  (default)" : ""}${i.pending ? "  (pending)" : ""}\n`,
        );
    });

  ca.command("default")
    .description("make an issuer (id or name) the default")
    .argument("<issuer>", "issuer id or name")
    .action(async (issuer: string, _o: unknown, cmd: Command) => {
      await client(cmd).json("POST", "pki/config/issuers", { default: issuer });
      process.stdout.write(`Success! Default issuer: ${issuer}\n`);
    });

  ca.command("issue")
    .description(
      "issue a certificate under a role with a server-generated key (printed once, after the certificate)",
    )
    .argument("<role>", "role name")
    .requiredOption("--common-name <cn>", "common name")
    .option("--alt-names <names>", "DNS names (or emails), comma-separated")
    .option("--ip-sans <ips>", "IP addresses, comma-separated")
    .option("--uri-sans <uris>", "URIs (e.g. spiffe://…), comma-separated")
    .option("--ttl <duration>", "validity, within the role's max_ttl")
    .option("--out <file>", "write the output here instead of stdout")
    .action(async (role: string, o: Record<string, string>, cmd: Command) => {
      const res = await client(cmd).json("POST", `pki/issue/${encodeURIComponent(role)}`, {
        common_name: o.commonName,
        ...(o.altNames ? { alt_names: o.altNames } : {}),
        ...(o.ipSans ? { ip_sans: o.ipSans } : {}),
        ...(o.uriSans ? { uri_sans: o.uriSans } : {}),
        ...(o.ttl ? { ttl: o.ttl } : {}),
      });
      const d = dataOf(res);
      printCert(cmd, res, [String(d.certificate), String(d.private_key), ...(d.ca_chain as string[])], o.out);
    });

  ca.command("sign")
    .description("sign a CSR under a role; prints the certificate (pem: followed by the CA chain)")
    .argument("<role>", "role name")
    .argument("<csr>", "CSR file (PEM), - for stdin")
    .option("--common-name <cn>", "common name when the role does not take the CSR's")
    .option("--ttl <duration>", "validity, within the role's max_ttl")
    .option("--out <file>", "write the certificate here instead of stdout")
    .action(async (role: string, file: string, o: Record<string, string>, cmd: Command) => {
      const res = await client(cmd).json("POST", `pki/sign/${encodeURIComponent(role)}`, {
        csr: readText(file, "CSR"),
        ...(o.commonName ? { common_name: o.commonName } : {}),
        ...(o.ttl ? { ttl: o.ttl } : {}),
      });
      const d = dataOf(res);
      printCert(cmd, res, [String(d.certificate), ...(d.ca_chain as string[])], o.out);
    });

  ca.command("revoke")
    .description("revoke a certificate (idempotent); it is in the delta CRL and OCSP at once")
    .argument("<serial>", "serial number (hex, with or without colons)")
    .option(
      "--reason <reason>",
      "RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, …",
      "unspecified",
    )
    .action(async (serial: string, o: { reason: string }, cmd: Command) => {
      const reason = revokeReason(o.reason);
      const res = await client(cmd).json("POST", "pki/revoke", { serial_number: serial, reason });
      print(
        globals(cmd).format === "json" ? res : dataOf(res),
        globals(cmd).format === "json" ? "json" : "table",
      );
    });

  ca.command("crl")
    .description("print the complete (or delta) CRL of the default issuer or --issuer")
    .option("--delta", "the delta CRL")
    .option("--issuer <ref>", "issuer id or name")
    .option("--out <file>", "write the CRL here instead of stdout")
    .action(async (o: { delta?: boolean; issuer?: string; out?: string }, cmd: Command) => {
      const c = client(cmd, false);
      const base = o.issuer ? `pki/issuer/${encodeURIComponent(o.issuer)}/crl` : "pki/crl";
      const res = await c.call("GET", `${base}${o.delta ? "/delta" : ""}/pem`);
      const pem = res.body.toString("utf8");
      printCert(cmd, { crl: pem }, [pem], o.out);
    });

  ca.command("list")
    .description("list issued certificates by serial (paged)")
    .option("--after <serial>", "start after this serial")
    .option("--limit <n>", "page size", "1000")
    .action(async (o: { after?: string; limit: string }, cmd: Command) => {
      if (!/^\d+$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > 10000)
        throw new CliError(`--limit must be a whole number from 1 to 10000, not "${o.limit}"`, 2);
      const q = new URLSearchParams({ limit: o.limit, ...(o.after ? { after: o.after } : {}) });
      const res = await client(cmd).json("LIST", `pki/certs?${q.toString()}`);
      const g = globals(cmd);
      if (g.format === "json") return print(res, "json");
      const info = (dataOf(res).key_info ?? {}) as Record<
        string,
        { subject: string; not_after: number; revoked: boolean }
      >;
      const now = Date.now();
      const state = (i: { not_after: number; revoked: boolean }) =>
        i.revoked ? "revoked" : i.not_after * 1000 <= now ? "expired" : "valid  ";
      for (const [serial, i] of Object.entries(info))
        process.stdout.write(
          `${serial}  ${new Date(i.not_after * 1000).toISOString()}  ${state(i)}  ${i.subject}\n`,
        );
      // A full page may not be the last one: say how to get the next.
      const serials = Object.keys(info);
      if (serials.length === Number(o.limit)) process.stderr.write(`(more: --after ${serials.at(-1)})\n`);
    });

  ca.command("show")
    .description("show one issued certificate")
    .argument("<serial>", "serial number")
    .action(async (serial: string, _o: unknown, cmd: Command) => {
      const res = await client(cmd, false).json("GET", `pki/cert/${encodeURIComponent(serial)}`);
      const d = dataOf(res);
      const g = globals(cmd);
      if (g.format === "pem" || g.format === "der") return printCert(cmd, res, [String(d.certificate)]);
      print(
        g.format === "json" ? res : { ...d, certificate: "(PEM; use --format pem or der)" },
        g.format === "json" ? "json" : "table",
      );
    });

  const role = ca.command("role").description("roles: what a certificate issued under each may contain");
  role
    .command("write")
    .description("create or update a role from key=value pairs and/or a JSON file (Vault's role fields)")
    .argument("<name>", "role name")
    .argument(
      "[fields...]",
      "key=value pairs, e.g. allowed_domains=fleet.example allow_subdomains=true max_ttl=720h",
    )
    .option("--file <file>", "a JSON object with the role's fields")
    .action(async (name: string, fields: string[], o: { file?: string }, cmd: Command) => {
      let body: Record<string, unknown> = {};
      if (o.file) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(readText(o.file, "role file"));
        } catch (e) {
          if (e instanceof CliError) throw e;
          throw new CliError(`${o.file} is not a JSON object: ${(e as Error).message}`);
        }
        // An array would be spread into fields "0", "1", …
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
          throw new CliError(`${o.file} is not a JSON object`);
        body = parsed as Record<string, unknown>;
      }
      await client(cmd).json("POST", `pki/roles/${encodeURIComponent(name)}`, { ...body, ...kvBody(fields) });
      process.stdout.write(`Success! Data written to: pki/roles/${name}\n`);
    });
  role
    .command("read")
    .description("print a role")
    .argument("<name>", "role name")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const res = await client(cmd).json("GET", `pki/roles/${encodeURIComponent(name)}`);
      print(
        globals(cmd).format === "json" ? res : dataOf(res),
        globals(cmd).format === "json" ? "json" : "table",
      );
    });
  role
    .command("list")
    .description("list role names")
    .action(async (_o: unknown, cmd: Command) => {
      const res = await client(cmd).json("LIST", "pki/roles");
      print(
        globals(cmd).format === "json" ? res : (dataOf(res).keys ?? []),
        globals(cmd).format === "json" ? "json" : "table",
      );
    });
  role
    .command("delete")
    .description("delete a role")
    .argument("<name>", "role name")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await client(cmd).json("DELETE", `pki/roles/${encodeURIComponent(name)}`);
      process.stdout.write(`Success! Deleted role: ${name}\n`);
    });
}
