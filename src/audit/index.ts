export { AuditLog } from "./log.js";
export { verifyAuditLog } from "./verify.js";
export { tailAuditLog } from "./tail.js";
export { AUDIT_FORMAT, CHECKPOINT_DOMAIN, GENESIS_PREV, checkpointPayload, keyIdOf } from "./format.js";
export { SEALED_VALUE } from "./redact.js";
export type {
  AuditEntry,
  AuditOptions,
  CheckpointReason,
  ProblemKind,
  TailOptions,
  VerifyOptions,
  VerifyProblem,
  VerifyResult,
} from "./types.js";
export { auditMigrations, readAuditAnchor, writeAuditAnchor, type AuditAnchor } from "./anchor.js";
