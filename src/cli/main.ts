import { run } from "./program.js";

const code = await run(process.argv.slice(2));
// The server command keeps the process alive itself; everything else exits with its code.
if (code !== 0 || !process.env.FLEETROOT_SERVER_RUNNING) process.exitCode = code;
