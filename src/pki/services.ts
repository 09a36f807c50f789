/**
 * The PKI's parts wired together once per server: issuers, issued certificates, roles, CRLs, the OCSP
 * responder and the authority that signs. Routes and the CRL scheduler share this one instance.
 */
import type { CoreServices } from "../server/main.js";
import type { Clock } from "../util/clock.js";
import { parseDuration } from "../util/duration.js";
import { CsrVerifier } from "../crypto/csr-pool.js";
import { Authority } from "./authority.js";
import { CertStore } from "./cert-store.js";
import { CrlService, type CrlTiming } from "./crl.js";
import { IssuerRegistry } from "./issuers.js";
import { OcspResponder } from "./responder.js";
import { RoleStore } from "./roles.js";

export interface PkiServices {
  readonly clock: Clock;
  readonly issuers: IssuerRegistry;
  readonly certs: CertStore;
  readonly roles: RoleStore;
  readonly crl: CrlService;
  readonly ocsp: OcspResponder;
  readonly authority: Authority;
  readonly timing: CrlTiming;
}

export function pkiServices(core: CoreServices): PkiServices {
  const cfg = core.config.pki;
  const timing: CrlTiming = {
    validity: parseDuration(cfg?.crl_validity ?? "72h", "pki.crl_validity"),
    rebuildInterval: parseDuration(cfg?.crl_rebuild_interval ?? "12h", "pki.crl_rebuild_interval"),
    deltaValidity: parseDuration(cfg?.delta_crl_validity ?? "30m", "pki.delta_crl_validity"),
  };
  const issuers = new IssuerRegistry({
    store: core.store,
    keys: core.keys,
    protector: core.barrier,
    clock: core.clock,
    dataDir: core.paths.dataDir,
    baseUrl: (cfg?.base_url ?? core.paths.apiAddr).replace(/\/+$/, ""),
  });
  const certs = new CertStore(core.store);
  const roles = new RoleStore(core.store, core.clock);
  const crl = new CrlService({ issuers, certs, clock: core.clock, timing });
  const ocsp = new OcspResponder({
    issuers,
    certs,
    clock: core.clock,
    validity: parseDuration(cfg?.ocsp_validity ?? "1h", "pki.ocsp_validity"),
  });
  const authority = new Authority({
    issuers,
    certs,
    roles,
    crl,
    ocsp,
    clock: core.clock,
    maxCsrBytes: cfg?.max_csr_bytes ?? 64 * 1024,
    csrs: new CsrVerifier(cfg?.csr_threads !== undefined ? { threads: cfg.csr_threads } : {}),
  });
  return { clock: core.clock, issuers, certs, roles, crl, ocsp, authority, timing };
}
