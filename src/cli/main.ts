import { run } from "./program.js";

// A reader that stops early (`fleetroot ca list | head`) closes the pipe under us: stop quietly with the
// exit code so far, as other command-line tools do, rather than crash on the failed write.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
    throw e;
  });
}

const code = await run(process.argv.slice(2));
// The server command keeps the process alive itself; everything else exits with its code.
if (code !== 0 || !process.env.FLEETROOT_SERVER_RUNNING) process.exitCode = code;
