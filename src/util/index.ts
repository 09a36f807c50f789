export { type Clock, systemClock, ManualClock } from "./clock.js";
export { parseDuration, formatDuration } from "./duration.js";
export { mkdirp, mkdirpSync } from "./mkdirp.js";
