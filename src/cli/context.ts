import type { Command } from "commander";
import { ApiClient } from "./client.js";
import { CliError, type Format } from "./output.js";

export interface GlobalOptions {
  address: string;
  token?: string;
  format: Format;
  caCert?: string;
}

/** Global options as seen from any subcommand. */
export function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Partial<GlobalOptions>;
  const format = (o.format ?? "table") as string;
  if (!["table", "json", "pem", "der"].includes(format)) {
    throw new CliError(`--format must be table, json, pem or der, not "${format}"`, 2);
  }
  return {
    address: o.address ?? "http://127.0.0.1:8200",
    format: format as Format,
    ...(o.token ? { token: o.token } : {}),
    ...(o.caCert ? { caCert: o.caCert } : {}),
  };
}

export function client(cmd: Command, needToken = true): ApiClient {
  const g = globals(cmd);
  if (needToken && !g.token) {
    throw new CliError("no token: set FLEETROOT_TOKEN or pass --token (operator init prints the root token)");
  }
  const from = (key: string, flag: string, env: string): string => {
    const source = cmd.getOptionValueSourceWithGlobals(key);
    return source === "env" ? env : source === "cli" ? flag : `${flag} (${env})`;
  };
  return new ApiClient({
    address: g.address,
    token: g.token,
    caCert: g.caCert,
    names: {
      address: from("address", "--address", "FLEETROOT_ADDR"),
      token: from("token", "--token", "FLEETROOT_TOKEN"),
      caCert: from("caCert", "--ca-cert", "FLEETROOT_CACERT"),
    },
  });
}

/** Reads JSON `data` out of a Vault-style envelope. */
export function dataOf(body: Record<string, unknown>): Record<string, unknown> {
  return (body.data ?? {}) as Record<string, unknown>;
}
