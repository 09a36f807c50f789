/**
 * src/pki public API: the PKI feature module (issuers, roles, issuance, revocation, CRLs, OCSP) and the
 * pieces other modules may use to have the authority sign. See docs/pki.md.
 */
export { pkiModule, type PkiModule } from "./module.js";
export { pkiMigrations, type PkiTables } from "./migrations.js";
export { type PkiServices, pkiServices } from "./services.js";
export { Authority, type Issued } from "./authority.js";
export { type Issuer, IssuerRegistry, assertCanSignCa } from "./issuers.js";
export { type Role, parseRole } from "./role.js";
export { applyRole, globMatch, type Grant, type NameRequest, type ProfileRequest } from "./policy.js";
export { RevokedArena } from "./revoked-arena.js";
export { buildCsr } from "./csr-build.js";
export { caCertRow } from "./cert-store.js";
export { colonSerial, normalizeSerial } from "./format.js";
