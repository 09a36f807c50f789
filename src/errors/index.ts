export { codes, type ErrorCode, type ErrorSpec } from "./codes.js";
export { FleetError, fail, isFleetError, toFleetError } from "./fleet-error.js";
