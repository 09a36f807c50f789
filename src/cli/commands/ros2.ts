import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { crlReasons, type CrlReason } from "../../crypto/index.js";
import { isFleetError } from "../../errors/index.js";
import { type KeyAlgorithm, type KeyManager, createKeyManager, keyAlgorithms } from "../../keys/index.js";
import {
  type GovernanceOptions,
  type KeystoreDeps,
  type ProtectionKind,
  Ros2Keystore,
  checkEnclaveName,
  createEnclave,
  listEnclaves,
  loadPolicyFile,
  parseDomains,
  protectionKinds,
  revokeEnclave,
  setPermissions,
  verifyKeystore,
} from "../../ros2/index.js";
import { systemClock } from "../../util/clock.js";
import { refreshRos2Crl } from "../../agent/ros2-crl.js";
import { obtainRos2Enclave } from "../../agent/ros2-enclave.js";
import { client, dataOf, globals } from "../context.js";
import { CliError, print } from "../output.js";

/** Runs `fn` with a key manager that is always closed (PKCS#11 sessions logged out) afterwards. */
async function withDeps<T>(fn: (deps: KeystoreDeps) => Promise<T>): Promise<T> {
  const keys: KeyManager = createKeyManager();
  try {
    return await fn({ keys, clock: systemClock });
  } finally {
    await keys.close();
  }
}

function days(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new CliError(`${what} must be a whole number of days, not "${v}"`, 2);
  return n;
}

/**
 * A key URI for a key made in a token. Software keys always live inside the keystore (key.pem, the layout
 * DDS and sros2 expect), so a `file:` URI would be silently ignored: it is refused instead.
 */
function tokenKey(v: string | undefined, flag: string): string | undefined {
  if (v === undefined || !v.startsWith("file:")) return v;
  throw new CliError(
    `${flag} takes a pkcs11: URI; software keys are made inside the keystore, so leave ${flag} out for one`,
    2,
  );
}

/** --domain: a malformed list or an id out of range is a usage error (exit 2), like the other flags. */
function domainsOption(v: string): ReturnType<typeof parseDomains> {
  try {
    return parseDomains(v);
  } catch (e) {
    if (isFleetError(e) && e.code === "FR_VALIDATION")
      throw new CliError(`--domain: ${e.detail ?? e.message}`, 2);
    throw e;
  }
}

const kindOption = (flag: string, what: string) =>
  new Option(`${flag} <kind>`, what).choices(protectionKinds as string[]);

export function ros2Commands(program: Command): void {
  const ros2 = program
    .command("ros2")
    .description(
      "ROS 2 / DDS Security: SROS2-compatible keystores, enclaves, permissions from policies (offline, on files)",
    );

  const keystore = ros2.command("keystore").description("create ROS 2 security keystores (sros2 layout)");
  keystore
    .command("create")
    .description(
      "create a keystore: identity and permissions CAs (separate unless --shared-ca) and signed governance",
    )
    .argument("<dir>", "keystore directory (must not exist or be empty); use it as ROS_SECURITY_KEYSTORE")
    .option("--shared-ca", "one CA for identity and permissions, as sros2 does (less safe)")
    .option("--ca-validity-days <n>", "CA certificate validity", "3650")
    .option("--validity-days <n>", "default enclave certificate validity", "3650")
    .option("--domain <ids>", "DDS domain ids for governance and permissions, e.g. 0 or 0,5-9", "0")
    .option(
      "--identity-ca-key <uri>",
      "generate the identity CA key at this key URI (e.g. pkcs11:…?pin-source=FILE)",
    )
    .option("--permissions-ca-key <uri>", "generate the permissions CA key at this key URI (e.g. in an HSM)")
    .option("--ca-key <uri>", "with --shared-ca: generate the CA key at this key URI")
    .addOption(
      new Option("--key-algorithm <alg>", "key algorithm for CAs and enclaves")
        .choices(keyAlgorithms as string[])
        .default("ecdsa-p256"),
    )
    .option("--allow-unauthenticated", "governance: allow unauthenticated participants")
    .option("--no-join-access-control", "governance: do not enable join access control")
    .addOption(kindOption("--discovery-protection", "governance discovery_protection_kind (default ENCRYPT)"))
    .addOption(
      kindOption("--liveliness-protection", "governance liveliness_protection_kind (default ENCRYPT)"),
    )
    .addOption(kindOption("--rtps-protection", "governance rtps_protection_kind (default SIGN)"))
    .addOption(
      kindOption(
        "--metadata-protection",
        "governance metadata_protection_kind for all topics (default ENCRYPT)",
      ),
    )
    .addOption(
      new Option(
        "--data-protection <kind>",
        "governance data_protection_kind for all topics (default ENCRYPT)",
      ).choices(["ENCRYPT", "SIGN", "NONE"]),
    )
    .action(async (dir: string, o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const governance: GovernanceOptions = {
        allowUnauthenticatedParticipants: o.allowUnauthenticated === true,
        enableJoinAccessControl: o.joinAccessControl !== false,
        ...(o.discoveryProtection
          ? { discoveryProtectionKind: o.discoveryProtection as ProtectionKind }
          : {}),
        ...(o.livelinessProtection
          ? { livelinessProtectionKind: o.livelinessProtection as ProtectionKind }
          : {}),
        ...(o.rtpsProtection ? { rtpsProtectionKind: o.rtpsProtection as ProtectionKind } : {}),
        ...(o.metadataProtection || o.dataProtection
          ? {
              topicRules: [
                {
                  topicExpression: "*",
                  ...(o.metadataProtection
                    ? { metadataProtectionKind: o.metadataProtection as ProtectionKind }
                    : {}),
                  ...(o.dataProtection
                    ? { dataProtectionKind: o.dataProtection as "ENCRYPT" | "SIGN" | "NONE" }
                    : {}),
                },
              ],
            }
          : {}),
      };
      if (o.caKey && !o.sharedCa)
        throw new CliError(
          "--ca-key applies with --shared-ca; use --identity-ca-key / --permissions-ca-key",
          2,
        );
      const ks = await withDeps((deps) =>
        Ros2Keystore.create(
          dir,
          {
            sharedCa: o.sharedCa === true,
            caValidityDays: days(o.caValidityDays as string, "--ca-validity-days") ?? 3650,
            enclaveValidityDays: days(o.validityDays as string, "--validity-days") ?? 3650,
            domains: domainsOption(o.domain as string),
            governance,
            keyAlgorithm: o.keyAlgorithm as KeyAlgorithm,
            ...(o.identityCaKey
              ? { identityCaKey: tokenKey(o.identityCaKey as string, "--identity-ca-key")! }
              : {}),
            ...(o.permissionsCaKey
              ? { permissionsCaKey: tokenKey(o.permissionsCaKey as string, "--permissions-ca-key")! }
              : {}),
            ...(o.caKey ? { caKey: tokenKey(o.caKey as string, "--ca-key")! } : {}),
          },
          deps,
        ),
      );
      print(
        { keystore: ks.root, shared_ca: ks.state.sharedCa, domains: ks.state.domains },
        globals(cmd).format,
      );
    });

  const enclave = ros2.command("enclave").description("create, list and revoke enclaves in a keystore");
  enclave
    .command("create")
    .description(
      "create an enclave: key (file or PKCS#11), certificate, CA copies, governance and signed permissions",
    )
    .argument("<dir>", "keystore directory")
    .argument("<name>", "fully qualified enclave name, e.g. /talker_listener/talker")
    .option(
      "--key <uri>",
      "generate the enclave key at this pkcs11: URI and write key.p11 instead of key.pem",
    )
    .option("--validity-days <n>", "certificate validity (default: the keystore's)")
    .option("--policy <file>", "grant from this sros2 policy (default: sros2's allow-all default policy)")
    .option("--no-ros-discovery-info", "leave out the ros_discovery_info allow rule")
    .action(
      async (
        dir: string,
        name: string,
        o: { key?: string; validityDays?: string; policy?: string; rosDiscoveryInfo: boolean },
        cmd: Command,
      ) => {
        const keyUri = tokenKey(o.key, "--key");
        const info = await withDeps(async (deps) => {
          const ks = await Ros2Keystore.open(dir, deps);
          const validityDays = days(o.validityDays, "--validity-days");
          return createEnclave(ks, name, {
            rosDiscoveryInfo: o.rosDiscoveryInfo,
            ...(keyUri ? { keyUri } : {}),
            ...(validityDays ? { validityDays } : {}),
            ...(o.policy ? { policy: loadPolicyFile(o.policy) } : {}),
          });
        });
        print(info, globals(cmd).format);
      },
    );
  enclave
    .command("list")
    .description("list the enclaves of a keystore with serial, validity, key kind and revocation")
    .argument("<dir>", "keystore directory")
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      const list = await withDeps(async (deps) => listEnclaves(await Ros2Keystore.open(dir, deps)));
      const format = globals(cmd).format;
      if (format === "json") print(list, "json");
      else
        for (const e of list)
          process.stdout.write(
            `${e.name}\t${e.serial}\t${e.notAfter}\t${e.key}${e.revoked ? "\trevoked" : ""}\n`,
          );
    });
  enclave
    .command("revoke")
    .description(
      "revoke an enclave's certificate and write the identity CA's crl.pem into public/ and every enclave",
    )
    .argument("<dir>", "keystore directory")
    .argument("<name>", "enclave name")
    .addOption(new Option("--reason <reason>", "CRL reason").choices(Object.keys(crlReasons)))
    .option("--crl-days <n>", "days until the CRL's nextUpdate", "365")
    .action(async (dir: string, name: string, o: { reason?: string; crlDays: string }, cmd: Command) => {
      const serial = await withDeps(async (deps) =>
        revokeEnclave(await Ros2Keystore.open(dir, deps), name, {
          ...(o.reason ? { reason: o.reason as CrlReason } : {}),
          crlValidityDays: days(o.crlDays, "--crl-days") ?? 365,
        }),
      );
      print({ enclave: name, serial, revoked: true }, globals(cmd).format);
    });

  ros2
    .command("permissions")
    .description("write permissions for enclaves from sros2 policies")
    .command("create")
    .description(
      "replace an enclave's permissions.xml/.p7s with grants from a policy, signed by the permissions CA",
    )
    .argument("<dir>", "keystore directory")
    .argument("<name>", "enclave name (the policy must have <enclave path=NAME>)")
    .argument("<policy>", "sros2 policy XML file (XIncludes resolved relative to it)")
    .option("--no-ros-discovery-info", "leave out the ros_discovery_info allow rule")
    .option("--domain <ids>", "DDS domain ids (default: the keystore's)")
    .action(
      async (
        dir: string,
        name: string,
        policyFile: string,
        o: { rosDiscoveryInfo: boolean; domain?: string },
        cmd: Command,
      ) => {
        const policy = loadPolicyFile(policyFile);
        await withDeps(async (deps) =>
          setPermissions(
            await Ros2Keystore.open(dir, deps),
            name,
            { policy },
            {
              rosDiscoveryInfo: o.rosDiscoveryInfo,
              ...(o.domain ? { domains: domainsOption(o.domain) } : {}),
            },
          ),
        );
        print({ enclave: name, policy: policyFile, signed: true }, globals(cmd).format);
      },
    );

  ros2
    .command("generate")
    .description(
      "create the keystore if missing, then enclaves for each --enclave and for every enclave of each --policy",
    )
    .requiredOption("--keystore <dir>", "keystore directory")
    .option("--policy <file...>", "sros2 policy files", [])
    .option("--enclave <name...>", "enclaves to create with the default policy", [])
    .option("--shared-ca", "when creating the keystore: one CA for identity and permissions")
    .option("--no-ros-discovery-info", "leave out the ros_discovery_info allow rule")
    .action(
      async (
        o: {
          keystore: string;
          policy: string[];
          enclave: string[];
          sharedCa?: boolean;
          rosDiscoveryInfo: boolean;
        },
        cmd: Command,
      ) => {
        if (o.policy.length === 0 && o.enclave.length === 0)
          throw new CliError("give at least one --policy or --enclave", 2);
        // Read every policy and check every name first: a bad one must fail before anything is written
        // (the keystore included).
        const policies = o.policy.map((f) => loadPolicyFile(f));
        // A policy's enclave paths were checked when it was parsed; --enclave names are checked here.
        for (const name of o.enclave) checkEnclaveName(name);
        const done = await withDeps(async (deps) => {
          const ks = await Ros2Keystore.open(o.keystore, deps).catch(async (e: unknown) => {
            if ((e as { code?: string }).code !== "FR_ROS2_KEYSTORE") throw e;
            return Ros2Keystore.create(o.keystore, { sharedCa: o.sharedCa === true }, deps);
          });
          const existing = new Set((await listEnclaves(ks)).map((e) => e.name));
          const created: string[] = [];
          for (const name of o.enclave) {
            if (existing.has(name)) continue;
            await createEnclave(ks, name, { rosDiscoveryInfo: o.rosDiscoveryInfo });
            existing.add(name);
            created.push(name);
          }
          for (const policy of policies) {
            for (const enc of policy.enclaves) {
              if (existing.has(enc.path)) {
                await setPermissions(ks, enc.path, { policy }, { rosDiscoveryInfo: o.rosDiscoveryInfo });
              } else {
                await createEnclave(ks, enc.path, { policy, rosDiscoveryInfo: o.rosDiscoveryInfo });
                existing.add(enc.path);
                created.push(enc.path);
              }
            }
          }
          return { keystore: ks.root, created, enclaves: [...existing].sort() };
        });
        print(done, globals(cmd).format);
      },
    );

  ros2FleetCommands(ros2);

  ros2
    .command("verify")
    .description(
      "check every signature, certificate chain, validity, revocation and permissions subject in a keystore",
    )
    .argument("<dir>", "keystore directory")
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      const report = await withDeps(async (deps) => verifyKeystore(await Ros2Keystore.open(dir, deps)));
      if (globals(cmd).format === "json") print(report, "json");
      else if (report.ok)
        process.stdout.write(`OK: ${report.enclaves} enclaves, ${report.checks} checks passed in ${dir}\n`);
      if (!report.ok) {
        const lines = report.problems.map(
          (p) => `  ${p.enclave ? `${p.enclave}: ` : ""}${p.file}: ${p.message}`,
        );
        throw new CliError(`keystore ${dir} fails verification:\n${lines.join("\n")}`);
      }
    });
}

/** `ros2 fleet …`: the server's ROS 2 CAs, governance, policies and assignments (`/v1/ros2/*`). */
function ros2FleetCommands(ros2: Command): void {
  const fleet = ros2
    .command("fleet")
    .description(
      "fleet provisioning on the server: ROS 2 CAs and governance, policies, assignments to devices",
    );
  fleet
    .command("config")
    .description(
      "create the fleet's ROS 2 identity and permissions CAs (first call) or change governance and validity",
    )
    .addOption(
      new Option(
        "--ca-source <source>",
        "local self-signed CAs, or also cross-signed by a PKI issuer",
      ).choices(["local", "pki"]),
    )
    .option(
      "--issuer <ref>",
      "with --ca-source pki: the PKI issuer that cross-signs the CAs (default: default)",
    )
    .option("--identity-ca-key <uri>", "key URI for the identity CA key (default: barrier-encrypted file)")
    .option("--permissions-ca-key <uri>", "key URI for the permissions CA key (e.g. pkcs11:…)")
    .option("--ca-ttl <duration>", "CA validity, e.g. 87600h")
    .option("--enclave-ttl <duration>", "enclave certificate validity, e.g. 8760h")
    .option("--domain <ids>", "DDS domain ids, e.g. 0 or 0,5-9")
    .option("--allow-unauthenticated", "governance: allow unauthenticated participants")
    .option("--no-join-access-control", "governance: do not enable join access control")
    .option("--no-ros-discovery-info", "leave the ros_discovery_info allow rule out of permissions")
    .action(async (o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const body: Record<string, unknown> = {};
      const map: Record<string, string> = {
        caSource: "ca_source",
        issuer: "issuer_ref",
        identityCaKey: "identity_ca_key",
        permissionsCaKey: "permissions_ca_key",
        caTtl: "ca_ttl",
        enclaveTtl: "enclave_ttl",
        domain: "domains",
      };
      for (const [k, f] of Object.entries(map)) if (typeof o[k] === "string") body[f] = o[k];
      if (o.allowUnauthenticated === true) body.allow_unauthenticated = true;
      if (o.joinAccessControl === false) body.join_access_control = false;
      if (o.rosDiscoveryInfo === false) body.ros_discovery_info = false;
      const d = dataOf(await client(cmd).json("POST", "ros2/config", body));
      print(d, globals(cmd).format);
    });
  fleet
    .command("show")
    .description("show the fleet's ROS 2 CA certificates, governance and settings")
    .action(async (_o: unknown, cmd: Command) => {
      print(dataOf(await client(cmd).json("GET", "ros2/config")), globals(cmd).format);
    });
  const policy = fleet.command("policy").description("sros2 policies kept on the server");
  policy
    .command("write")
    .description("store an sros2 policy (self-contained: XInclude is refused by the server)")
    .argument("<name>", "policy name")
    .argument("<file>", "sros2 policy XML file")
    .action(async (name: string, file: string, _o: unknown, cmd: Command) => {
      let xml: string;
      try {
        xml = readFileSync(file, "utf8");
      } catch (e) {
        throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
      }
      const path = `ros2/policies/${encodeURIComponent(name)}`;
      print(dataOf(await client(cmd).json("POST", path, { policy: xml })), globals(cmd).format);
    });
  policy
    .command("list")
    .description("list policy names")
    .action(async (_o: unknown, cmd: Command) => {
      print(dataOf(await client(cmd).json("LIST", "ros2/policies")), globals(cmd).format);
    });
  fleet
    .command("assign")
    .description("assign a policy to one device (--device) or to every device with labels (--labels)")
    .argument("<name>", "assignment name")
    .requiredOption("--policy <name>", "policy to assign")
    .option("--device <id>", "device id")
    .option("--labels <k=v,…>", "devices carrying all these labels")
    .action(async (name: string, o: { policy: string; device?: string; labels?: string }, cmd: Command) => {
      if ((o.device === undefined) === (o.labels === undefined))
        throw new CliError("give exactly one of --device or --labels", 2);
      const body = { policy: o.policy, ...(o.device ? { device_id: o.device } : { labels: o.labels }) };
      const path = `ros2/assignments/${encodeURIComponent(name)}`;
      print(dataOf(await client(cmd).json("POST", path, body)), globals(cmd).format);
    });
}

/** `agent ros2-enclave`, added to the `agent` command group (src/cli/commands/agent.ts). */
export function agentRos2Commands(agent: Command): void {
  agent
    .command("ros2-enclave")
    .description(
      "obtain a ROS 2 enclave from the server: make its key here, send a CSR over mutual TLS with the device certificate, write the enclave into --keystore",
    )
    .requiredOption(
      "--enclave <name>",
      "fully qualified enclave name, e.g. /ns/node (the assigned policy must name it)",
    )
    .requiredOption("--keystore <dir>", "keystore directory (ROS_SECURITY_KEYSTORE); created when missing")
    .requiredOption("--identity <dir>", "the device's identity directory (agent enroll --out)")
    .option("--server <url>", "Fleetroot server (default: the one enrolled with)")
    .option(
      "--server-ca <file>",
      "CA bundle that verifies the server's TLS certificate (default: the enrolled one)",
    )
    .option("--key <uri>", "make the enclave key at this pkcs11: URI (key.p11) instead of key.pem")
    .addOption(
      new Option("--key-type <alg>", "enclave key algorithm")
        .choices(keyAlgorithms as string[])
        .default("ecdsa-p256"),
    )
    .option("--replace", "replace an existing enclave (renewal)")
    .action(async (o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const out = await obtainRos2Enclave({
        identity: o.identity as string,
        enclave: o.enclave as string,
        keystore: o.keystore as string,
        server: o.server as string | undefined,
        caCert: (o.serverCa as string | undefined) ?? globals(cmd).caCert,
        keyUri: tokenKey(o.key as string | undefined, "--key"),
        keyAlgorithm: o.keyType as KeyAlgorithm,
        replace: o.replace === true,
      });
      print(out, globals(cmd).format);
    });
  agent
    .command("ros2-crl")
    .description(
      "refresh crl.pem (the fleet's ROS 2 identity CRL, from ros2/crl) in public/ and every enclave of --keystore, all at once; run it periodically",
    )
    .requiredOption("--keystore <dir>", "keystore directory (ROS_SECURITY_KEYSTORE)")
    .option(
      "--identity <dir>",
      "the device's identity directory (agent enroll --out): server and CA from there",
    )
    .option("--server <url>", "Fleetroot server (default: the one recorded in --identity)")
    .option(
      "--server-ca <file>",
      "CA bundle that verifies the server's TLS certificate (default: the one recorded in --identity)",
    )
    .action(async (o: Record<string, string | undefined>, cmd: Command) => {
      const out = await refreshRos2Crl({
        keystore: o.keystore as string,
        identity: o.identity,
        server: o.server,
        caCert: o.serverCa ?? globals(cmd).caCert,
      });
      print(out, globals(cmd).format);
    });
}
