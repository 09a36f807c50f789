/** src/devices public API: the device registry and its routes. See docs/devices.md. */
export { deviceMigrations, type DeviceStatus, type DeviceTables } from "./migrations.js";
export {
  DeviceRegistry,
  certFingerprint,
  deviceStatuses,
  type Device,
  type DeviceCertificate,
  type DeviceFilter,
  type IssuedCertificate,
  type NewDevice,
} from "./registry.js";
export { checkDeviceId, checkLabels, checkName, parseLabelSelector } from "./validate.js";
export { deviceRoutes, type DeviceLifecycle } from "./routes.js";
