export { type Clock, systemClock, ManualClock } from "./clock.js";
export { parseDuration, formatDuration } from "./duration.js";
