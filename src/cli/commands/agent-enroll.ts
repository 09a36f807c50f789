import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { type EnrollProof, enrollDevice } from "../../agent/enroll.js";
import { runAgent } from "../../agent/run.js";
import { fetchTrustedRoot, storeTrustedRoot } from "../../agent/trusted-root.js";
import { type KeyAlgorithm, keyAlgorithms } from "../../keys/index.js";
import { globals } from "../context.js";
import { CliError, print } from "../output.js";

function proofOf(o: {
  token?: string;
  key?: string;
  idevidCert?: string;
  idevidKey?: string;
  psaTokenCmd?: string;
}): EnrollProof {
  const given = [o.token, o.key, o.idevidCert ?? o.idevidKey, o.psaTokenCmd].filter(
    (x) => x !== undefined,
  ).length;
  if (given !== 1) {
    throw new CliError(
      "give exactly one proof: --token, --key, --idevid-cert with --idevid-key, or --psa-token-cmd",
      2,
    );
  }
  if (o.token) return { type: "token", token: o.token };
  if (o.key) return { type: "key", uri: o.key };
  if (o.psaTokenCmd) return { type: "psa", tokenCmd: o.psaTokenCmd };
  if (!o.idevidCert || !o.idevidKey) throw new CliError("--idevid-cert and --idevid-key go together", 2);
  return { type: "idevid", certFile: o.idevidCert, keyUri: o.idevidKey };
}

function serverUrl(v: string): string {
  const u = URL.canParse(v) ? new URL(v) : undefined;
  if (u?.protocol !== "https:" && u?.protocol !== "http:")
    throw new CliError(`--server must be an http(s) URL, e.g. https://fleet.example:8200 (got "${v}")`, 2);
  return v;
}

function keyAlgorithm(v: string | undefined): KeyAlgorithm | undefined {
  if (v === undefined) return undefined;
  if (!keyAlgorithms.includes(v as KeyAlgorithm))
    throw new CliError(`--key-type must be one of ${keyAlgorithms.join(", ")}`, 2);
  return v as KeyAlgorithm;
}

/** `agent enroll` and `agent run`, added to the `agent` command group (src/cli/commands/agent.ts). */
export function agentEnrollCommands(agent: Command): void {
  agent
    .command("enroll")
    .description(
      "enroll this device: make a key, prove what the device is, and write its certificate into --out",
    )
    .requiredOption("--server <url>", "Fleetroot server, e.g. https://fleet.example:8200", serverUrl)
    .requiredOption("--provisioner <name>", "provisioner to enroll with")
    .requiredOption("--out <dir>", "directory for the key, certificate and agent state")
    .option("--token <token>", "join token (join-token provisioner)")
    .option("--key <uri>", "registered device key, file: or pkcs11: (registered-key provisioner)")
    .option(
      "--idevid-cert <file>",
      "IDevID certificate chain, PEM, device certificate first (x509 provisioner)",
    )
    .option("--idevid-key <uri>", "IDevID private key, file: or pkcs11: (x509 provisioner)")
    .option(
      "--psa-token-cmd <cmd>",
      "command printing a PSA token for $FLEETROOT_PSA_CHALLENGE (psa provisioner)",
    )
    .option("--device-id <id>", "device id to ask for (unbound join tokens)")
    .option("--key-type <alg>", "algorithm of the new device key", "ecdsa-p256")
    .option("--rekey <alg>", "make a new key of this algorithm at every renewal")
    .option("--reload-cmd <cmd>", "command to run after a new certificate is in place")
    .option("--server-ca <file>", "CA bundle that verifies the server's TLS certificate")
    .option(
      "--updates-repo <name>",
      "also store this update repository's trusted TUF root in OUT/tuf/NAME/root.json (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .action(async (o: Record<string, string | undefined>, cmd: Command) => {
      const repos = (o as unknown as { updatesRepo: string[] }).updatesRepo;
      const ca = o.serverCa ?? globals(cmd).caCert;
      // Roots are fetched (and checked) before enrolling, so a wrong name leaves nothing half-done.
      const fetched = new Map<string, Buffer>();
      for (const repo of repos) {
        fetched.set(
          repo,
          await fetchTrustedRoot({ server: o.server!, repo, ...(ca ? { ca: readFileSync(ca) } : {}) }),
        );
      }
      // The program's global -t/--token (a server token) takes `--token` wherever it appears; on this
      // command it is the join token — but only when typed, never from FLEETROOT_TOKEN.
      let root: Command = cmd;
      while (root.parent) root = root.parent;
      if (o.token === undefined && root.getOptionValueSource("token") === "cli")
        o.token = root.opts<{ token?: string }>().token;
      const r = await enrollDevice({
        server: o.server!,
        provisioner: o.provisioner!,
        out: o.out!,
        proof: proofOf(o),
        caCert: o.serverCa ?? globals(cmd).caCert,
        deviceId: o.deviceId,
        keyAlgorithm: keyAlgorithm(o.keyType),
        rekey: keyAlgorithm(o.rekey),
        reloadCmd: o.reloadCmd,
      });
      if (r.reloadError) process.stderr.write(`Warning: ${r.reloadError}\n`);
      const roots: Record<string, string> = {};
      for (const [repo, body] of fetched) roots[repo] = await storeTrustedRoot(o.out!, repo, body);
      print(
        {
          device_id: r.deviceId,
          serial_number: r.serial,
          expiration: new Date(r.notAfter).toISOString(),
          dir: r.dir,
          ...(Object.keys(roots).length ? { trusted_roots: roots } : {}),
        },
        globals(cmd).format,
      );
    });

  agent
    .command("run")
    .description(
      "keep the certificate in --out fresh: renew at 2/3 of its lifetime over mutual TLS (a pkcs11: key " +
        "through OpenSSL's PKCS#11 engine, libengine-pkcs11-openssl), retry with backoff",
    )
    .requiredOption("--out <dir>", "directory written by `agent enroll`")
    .option("--once", "exit after the first renewal")
    .action(async (o: { out: string; once?: boolean }) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
      await runAgent({
        out: o.out,
        once: !!o.once,
        signal: ac.signal,
        log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
      });
    });
}
