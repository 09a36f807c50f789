/**
 * bench/ros2 — issue 5's Performance section: a keystore with 1,000 enclaves (key, certificate from the
 * identity CA, permissions signed by the permissions CA, CA and governance copies) made by Fleetroot, next
 * to the same work done with `openssl` command lines the way sros2's tutorials script it (genpkey, req,
 * x509 -req, smime -sign per enclave), measured in the same run. Goal: >= 20x faster.
 * To keep the run bounded the openssl way is timed on a sample (BENCH_ROS2_SAMPLE, default 50 enclaves)
 * and extrapolated linearly to BENCH_ROS2_ENCLAVES (default 1,000); the output says so.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createKeyManager } from "../src/keys/index.js";
import {
  Ros2Keystore,
  createEnclave,
  createEnclaves,
  defaultPolicyFor,
  grantsFromPolicy,
  governanceXml,
  listEnclaves,
  permissionsXml,
} from "../src/ros2/index.js";
import { systemClock } from "../src/util/clock.js";

const N = Number(process.env.BENCH_ROS2_ENCLAVES ?? 1000);
const SAMPLE = Math.min(N, Number(process.env.BENCH_ROS2_SAMPLE ?? 50));
const DAY = 86_400_000;
// BENCH_ROS2_DIR: where the keystores are written (default the system temporary directory).
const root = fs.mkdtempSync(path.join(process.env.BENCH_ROS2_DIR ?? os.tmpdir(), "fr-bench-ros2-"));
const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `/${prefix}/robot_${i}`);
const line = (label: string, value: string) => console.log(`${label.padEnd(60)} ${value}`);
const openssl = (args: string[], cwd: string) => execFileSync("openssl", args, { cwd, stdio: "pipe" });

/** Fleetroot: keystore (two CAs, signed governance) and `n` enclaves through createEnclaves. */
async function fleetroot(dir: string, n: number, batch: boolean): Promise<number> {
  const keys = createKeyManager();
  const t0 = performance.now();
  const ks = await Ros2Keystore.create(dir, {}, { keys, clock: systemClock });
  if (batch)
    await createEnclaves(
      ks,
      names(n, "fleet").map((name) => ({ name })),
    );
  else for (const name of names(n, "fleet")) await createEnclave(ks, name);
  const ms = performance.now() - t0;
  if ((await listEnclaves(ks)).length !== n) throw new Error(`expected ${n} enclaves in ${dir}`);
  await keys.close();
  return ms;
}

const CA_ARGS = ["-x509", "-days", "3650", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE"];

/** The openssl way: the same keystore layout, one command line per step, as a tutorial script runs them. */
function opensslKeystore(dir: string): { setupMs: number; perEnclaveMs: number } {
  const t0 = performance.now();
  fs.mkdirSync(path.join(dir, "public"), { recursive: true });
  fs.mkdirSync(path.join(dir, "private"));
  fs.mkdirSync(path.join(dir, "enclaves"));
  for (const [ca, cn] of [
    ["identity_ca", "Identity CA"],
    ["permissions_ca", "Permissions CA"],
  ] as const) {
    const key = `private/${ca}.key.pem`;
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key], dir);
    openssl(
      ["req", "-new", "-key", key, "-subj", `/CN=${cn}`, ...CA_ARGS, "-out", `public/${ca}.cert.pem`],
      dir,
    );
  }
  fs.writeFileSync(path.join(dir, "enclaves/governance.xml"), governanceXml({ domains: [0] }));
  const sign = ["smime", "-sign", "-text", "-signer", "../public/permissions_ca.cert.pem"];
  openssl(
    [
      ...sign,
      "-inkey",
      "../private/permissions_ca.key.pem",
      "-in",
      "governance.xml",
      "-out",
      "governance.p7s",
    ],
    path.join(dir, "enclaves"),
  );
  const setupMs = performance.now() - t0;

  const t1 = performance.now();
  for (const name of names(SAMPLE, "fleet")) {
    const e = path.join(dir, "enclaves", name);
    fs.mkdirSync(e, { recursive: true });
    const up = path.relative(e, dir);
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "key.pem"], e);
    // -subj takes "/" as the RDN separator: the enclave name's slashes are escaped.
    openssl(
      ["req", "-new", "-key", "key.pem", "-subj", `/CN=${name.replaceAll("/", "\\/")}`, "-out", "req.pem"],
      e,
    );
    openssl(
      [
        "x509",
        "-req",
        "-in",
        "req.pem",
        "-CA",
        `${up}/public/identity_ca.cert.pem`,
        "-CAkey",
        `${up}/private/identity_ca.key.pem`,
        "-set_serial",
        `0x${randomBytes(16).toString("hex")}`,
        "-days",
        "3650",
        "-sha256",
        "-out",
        "cert.pem",
      ],
      e,
    );
    const now = Date.now();
    const grants = grantsFromPolicy(
      defaultPolicyFor(name),
      { notBefore: new Date(now), notAfter: new Date(now + 3650 * DAY) },
      [name],
    );
    fs.writeFileSync(path.join(e, "permissions.xml"), permissionsXml(grants));
    for (const f of ["identity_ca.cert.pem", "permissions_ca.cert.pem"])
      fs.copyFileSync(path.join(dir, "public", f), path.join(e, f));
    fs.copyFileSync(path.join(dir, "enclaves/governance.p7s"), path.join(e, "governance.p7s"));
    openssl(
      [
        "smime",
        "-sign",
        "-text",
        "-signer",
        `${up}/public/permissions_ca.cert.pem`,
        "-inkey",
        `${up}/private/permissions_ca.key.pem`,
        "-in",
        "permissions.xml",
        "-out",
        "permissions.p7s",
      ],
      e,
    );
  }
  return { setupMs, perEnclaveMs: (performance.now() - t1) / SAMPLE };
}

/**
 * What the filesystem alone costs here: a directory with the 8 files of an enclave, created and renamed
 * into place (no crypto). Both ways pay it per enclave; on a busy virtual disk it dominates Fleetroot's time.
 */
function filesystemFloorMs(dir: string, n = 100): number {
  fs.mkdirSync(dir);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const d = path.join(dir, `.t${i}`);
    fs.mkdirSync(d);
    for (let j = 0; j < 8; j++) fs.writeFileSync(path.join(d, `f${j}`), "x".repeat(700), { flag: "wx" });
    fs.renameSync(d, path.join(dir, `d${i}`));
  }
  return (performance.now() - t0) / n;
}

/** Both outputs are checked by openssl, untimed: certificate chain and permissions signature. */
function check(dir: string, name: string): void {
  const e = path.join(dir, "enclaves", name);
  openssl(["verify", "-CAfile", path.join(dir, "public/identity_ca.cert.pem"), "cert.pem"], e);
  const ca = path.join(dir, "public/permissions_ca.cert.pem");
  openssl(["smime", "-verify", "-text", "-in", "permissions.p7s", "-CAfile", ca, "-out", "/dev/null"], e);
}

async function main(): Promise<void> {
  console.log(`\n-- keystore with ${N} enclaves (ECDSA P-256, separate identity and permissions CAs)`);
  await fleetroot(path.join(root, "warmup"), 20, true);
  const ours = await fleetroot(path.join(root, "fleetroot"), N, true);
  const theirs = opensslKeystore(path.join(root, "openssl"));
  const oneByOne = await fleetroot(path.join(root, "fleetroot-single"), N, false);
  check(path.join(root, "fleetroot"), `/fleet/robot_${N - 1}`);
  check(path.join(root, "openssl"), `/fleet/robot_${SAMPLE - 1}`);
  const floor = filesystemFloorMs(path.join(root, "floor"));
  const extrapolated = theirs.setupMs + theirs.perEnclaveMs * N;
  line(
    `Fleetroot createEnclaves (batch, in process)`,
    `${(ours / 1000).toFixed(2)} s (${(ours / N).toFixed(2)} ms/enclave)`,
  );
  line(
    `Fleetroot createEnclave one at a time (as ros2 generate)`,
    `${(oneByOne / 1000).toFixed(2)} s (${(oneByOne / N).toFixed(2)} ms/enclave)`,
  );
  line(
    `openssl command lines: measured on ${SAMPLE} enclaves`,
    `${theirs.perEnclaveMs.toFixed(1)} ms/enclave + ${theirs.setupMs.toFixed(0)} ms keystore setup`,
  );
  line(`openssl command lines: extrapolated linearly to ${N}`, `${(extrapolated / 1000).toFixed(1)} s`);
  const ratio = extrapolated / ours;
  line("speed-up, batch (goal >= 20x)", `${ratio.toFixed(1)}x — ${ratio >= 20 ? "met" : "NOT met"}`);
  line("speed-up, one at a time", `${(extrapolated / oneByOne).toFixed(1)}x`);
  line(
    "filesystem alone: one enclave directory of 8 files",
    `${floor.toFixed(2)} ms (in ${path.dirname(root)})`,
  );
  console.log(
    `(load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} on ${os.cpus().length} CPUs)`,
  );
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
