export { Barrier, type KeyStatus, type PreparedInit } from "./barrier.js";
export { BarrierView } from "./view.js";
export { SealManager } from "./manager.js";
export { sealMigrations, type SealTables } from "./migrations.js";
export type { InitRequest, InitResult, SealConfig, SealManagerDeps, SealStatus, SealType } from "./types.js";
