import type { Command } from "commander";
import { client, globals } from "../context.js";
import { CliError, print, type Format } from "../output.js";

/**
 * preAction hook for command groups that print only tables or JSON: --format pem/der is a usage error
 * before any request is sent (a token created and then not printed would be lost).
 */
export function tableOrJsonOnly(_group: Command, action: Command): void {
  const f = globals(action).format;
  if (f === "pem" || f === "der")
    throw new CliError(
      `--format ${f} applies only to commands that output certificates, CRLs or keys; use table or json`,
      2,
    );
}

export function operatorCommands(program: Command): void {
  const op = program
    .command("operator")
    .description("initialize, unseal, seal and inspect the server")
    .hook("preAction", tableOrJsonOnly);

  op.command("init")
    .description(
      "initialize a new server: creates the barrier root key, its unseal key shares and the root token",
    )
    .option("-n, --key-shares <n>", "number of unseal key shares", "5")
    .option("-t, --key-threshold <t>", "shares needed to unseal", "3")
    .action(async (o: { keyShares: string; keyThreshold: string }, cmd: Command) => {
      const c = client(cmd, false);
      const shares = toInt(o.keyShares, "--key-shares");
      const threshold = toInt(o.keyThreshold, "--key-threshold");
      const res = await c.json("PUT", "sys/init", { secret_shares: shares, secret_threshold: threshold });
      const g = globals(cmd);
      if (g.format === "json") return print(res, "json");
      const keys = (res.keys_base64 as string[] | undefined) ?? [];
      keys.forEach((k, i) => process.stdout.write(`Unseal Key ${i + 1}: ${k}\n`));
      const rec = (res.recovery_keys_base64 as string[] | undefined) ?? [];
      rec.forEach((k, i) => process.stdout.write(`Recovery Key ${i + 1}: ${k}\n`));
      process.stdout.write(`\nInitial Root Token: ${String(res.root_token)}\n\n`);
      if (keys.length) {
        process.stdout.write(
          `The server is initialized with ${shares} key shares and a threshold of ${threshold}.\n` +
            `Keep the shares apart: ${threshold} of them are needed each time the server starts (fleetroot operator unseal).\n`,
        );
      } else {
        process.stdout.write("The server unseals itself through its HSM seal.\n");
      }
    });

  op.command("unseal")
    .description("provide one unseal key share (prompted for when not given)")
    .argument("[key]", "an unseal key share (hex or base64)")
    .option("--reset", "discard the shares provided so far")
    .action(async (key: string | undefined, o: { reset?: boolean }, cmd: Command) => {
      const c = client(cmd, false);
      let body: Record<string, unknown>;
      if (o.reset) {
        if (key !== undefined)
          throw new CliError("--reset discards the shares given so far and takes no key: drop the key", 2);
        body = { reset: true };
      } else {
        const k = key ?? (await readSecretLine("Unseal Key (will be hidden): "));
        if (!k) throw new CliError("no unseal key given", 2);
        body = { key: k };
      }
      const res = await c.json("PUT", "sys/unseal", body);
      printSealStatus(res, globals(cmd).format);
    });

  op.command("seal")
    .description("seal the server: it drops its keys and answers 503 until unsealed (needs sudo on sys/seal)")
    .action(async (_o: unknown, cmd: Command) => {
      await client(cmd).json("PUT", "sys/seal");
      process.stdout.write("Success! The server is sealed.\n");
    });

  op.command("status")
    .description("show seal status; exit code 2 when sealed (also when not yet initialized), 1 on error")
    .action(async (_o: unknown, cmd: Command) => {
      const res = await client(cmd, false).json("GET", "sys/seal-status");
      printSealStatus(res, globals(cmd).format);
      // A server never initialized reports sealed too, but unseal cannot help it: init is the next step.
      if (res.initialized === false)
        throw new CliError("the server is not initialized; the next step is `fleetroot operator init`", 2);
      if (res.sealed === true) throw new CliError("the server is sealed", 2);
    });
}

function printSealStatus(res: Record<string, unknown>, format: Format): void {
  if (format === "json") return print(res, "json");
  print(
    {
      "Seal Type": res.type,
      Initialized: res.initialized,
      Sealed: res.sealed,
      "Total Shares": res.n,
      Threshold: res.t,
      "Unseal Progress": `${String(res.progress)}/${String(res.t)}`,
      "Unseal Nonce": res.nonce || "n/a",
      Version: res.version,
      "Storage Type": res.storage_type,
    },
    "table",
  );
}

function toInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag} must be a positive integer, not "${v}"`, 2);
  return n;
}

/** Reads one line from stdin; on a terminal the typed characters are not echoed. */
async function readSecretLine(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return (Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0] ?? "").trim();
  }
  const { createInterface } = await import("node:readline");
  process.stderr.write(prompt);
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
  return await new Promise<string>((resolve) => {
    let answered = false;
    rl.once("line", (line) => {
      answered = true;
      rl.close();
      process.stderr.write("\n");
      resolve(line.trim());
    });
    rl.once("close", () => {
      if (!answered) resolve("");
    });
  });
}
