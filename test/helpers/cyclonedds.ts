import fs from "node:fs";
import path from "node:path";

/**
 * Debian's cyclonedds-tools puts the DDS Security plugins in a libddsc0debian/ subfolder of the multiarch
 * library directory, off the loader path: the configuration names them by absolute path.
 */
export function cyclonePluginDir(): string {
  for (const d of fs.readdirSync("/usr/lib")) {
    const p = path.join("/usr/lib", d, "libddsc0debian");
    if (fs.existsSync(path.join(p, "libdds_security_auth.so"))) return p;
  }
  throw new Error(
    "Cyclone DDS security plugins are missing: install cyclonedds-tools (scripts/install-test-deps.sh)",
  );
}

export interface CycloneSecurityFiles {
  readonly cert: string;
  readonly identityCa: string;
  readonly key: string;
  readonly crl?: string | undefined;
  readonly governance: string;
  readonly permissionsCa: string;
  readonly permissions: string;
}

/**
 * Writes a CYCLONEDDS_URI file for one secure participant on loopback: no multicast, peers found by unicast on
 * 127.0.0.1 at `portBase` (keeps concurrent cases apart), finest tracing to `trace`. Returns the file: URI.
 */
export function cycloneSecurityConfig(
  file: string,
  o: CycloneSecurityFiles & { trace: string; portBase?: number },
): string {
  const lib = cyclonePluginDir();
  const f = (p: string) => `file:${p}`;
  fs.writeFileSync(
    file,
    `<CycloneDDS><Domain id="any">
  <General><Interfaces><NetworkInterface name="lo"/></Interfaces><AllowMulticast>false</AllowMulticast></General>
  <Discovery><Ports><Base>${o.portBase ?? 7400}</Base></Ports><Peers><Peer address="127.0.0.1"/></Peers><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>40</MaxAutoParticipantIndex></Discovery>
  <Security>
    <Authentication>
      <Library path="${lib}/libdds_security_auth.so" initFunction="init_authentication" finalizeFunction="finalize_authentication"/>
      <IdentityCertificate>${f(o.cert)}</IdentityCertificate>
      <IdentityCA>${f(o.identityCa)}</IdentityCA>
      <PrivateKey>${f(o.key)}</PrivateKey>
      ${o.crl ? `<CRL>${f(o.crl)}</CRL>` : ""}
    </Authentication>
    <AccessControl>
      <Library path="${lib}/libdds_security_ac.so" initFunction="init_access_control" finalizeFunction="finalize_access_control"/>
      <Governance>${f(o.governance)}</Governance>
      <PermissionsCA>${f(o.permissionsCa)}</PermissionsCA>
      <Permissions>${f(o.permissions)}</Permissions>
    </AccessControl>
    <Cryptographic>
      <Library path="${lib}/libdds_security_crypto.so" initFunction="init_crypto" finalizeFunction="finalize_crypto"/>
    </Cryptographic>
  </Security>
  <Tracing><Verbosity>finest</Verbosity><OutputFile>${o.trace}</OutputFile></Tracing>
</Domain></CycloneDDS>`,
  );
  return `file://${file}`;
}

/** The enclave files of an sros2 enclave directory, as CycloneSecurityFiles. */
export function enclaveFiles(dir: string, crl = false): CycloneSecurityFiles {
  const j = (n: string) => path.join(dir, n);
  return {
    cert: j("cert.pem"),
    identityCa: j("identity_ca.cert.pem"),
    key: j("key.pem"),
    ...(crl ? { crl: j("crl.pem") } : {}),
    governance: j("governance.p7s"),
    permissionsCa: j("permissions_ca.cert.pem"),
    permissions: j("permissions.p7s"),
  };
}
