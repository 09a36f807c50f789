import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FleetError } from "../errors/index.js";
import { loadConfig } from "./load.js";
import { resolvePaths } from "./paths.js";

const dir = mkdtempSync(join(tmpdir(), "fr-config-"));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function errorOf(fn: () => unknown): FleetError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    return e as FleetError;
  }
  throw new Error("expected an error");
}

describe("config", () => {
  it("loads a YAML file with defaults filled in and freezes it", () => {
    const c = loadConfig({
      file: file(
        "ok.yaml",
        "listen: 127.0.0.1:9200\nseal:\n  type: shamir\naudit:\n  checkpoint_every: 10\n",
      ),
      env: {},
    });
    expect(c.listen).toBe("127.0.0.1:9200");
    expect(c.audit.checkpoint_every).toBe(10);
    expect(c.audit.sync_reads).toBe(false);
    expect(c.limits.max_body_bytes).toBe(1024 * 1024);
    expect(Object.isFrozen(c.audit)).toBe(true);
    const p = resolvePaths(c);
    expect(p.storage).toMatch(/^sqlite:.*fleetroot\.db$/);
  });

  it("audit.sync_reads takes a boolean and nothing else", () => {
    const on = loadConfig({ file: file("sync.yaml", "audit:\n  sync_reads: true\n"), env: {} });
    expect(on.audit.sync_reads).toBe(true);
    const e = errorOf(() =>
      loadConfig({ file: file("sync-bad.yaml", "audit:\n  sync_reads: sometimes\n"), env: {} }),
    );
    expect(e.code).toBe("FR_CONFIG_INVALID");
    expect(e.message).toContain("audit.sync_reads");
  });

  it("pki.csr_threads takes a whole number from 0 to 64", () => {
    const ok = loadConfig({ file: file("thr.yaml", "pki:\n  csr_threads: 0\n"), env: {} });
    expect(ok.pki?.csr_threads).toBe(0);
    for (const bad of ["-1", "1.5", "65", "many"]) {
      const e = errorOf(() =>
        loadConfig({ file: file(`thr-${bad}.yaml`, `pki:\n  csr_threads: ${bad}\n`), env: {} }),
      );
      expect(e.code).toBe("FR_CONFIG_INVALID");
      expect(e.message).toContain("pki.csr_threads");
    }
  });

  it("secrets.kv_cache_keys defaults to 10000 and takes a whole number, 0 turning the cache off", () => {
    expect(
      loadConfig({ file: file("kvc0.yaml", "listen: 127.0.0.1:8200\n"), env: {} }).secrets,
    ).toBeUndefined();
    const ok = loadConfig({ file: file("kvc.yaml", "secrets:\n  kv_cache_keys: 0\n"), env: {} });
    expect(ok.secrets?.kv_cache_keys).toBe(0);
    expect(loadConfig({ file: file("kvd.yaml", "secrets: {}\n"), env: {} }).secrets?.kv_cache_keys).toBe(
      10000,
    );
    for (const bad of ["-1", "2.5", "lots"]) {
      const e = errorOf(() =>
        loadConfig({ file: file(`kvc-${bad}.yaml`, `secrets:\n  kv_cache_keys: ${bad}\n`), env: {} }),
      );
      expect(e.code).toBe("FR_CONFIG_INVALID");
      expect(e.message).toContain("secrets.kv_cache_keys");
    }
  });

  it("an unknown key fails with one line naming the key and the file", () => {
    const f = file("typo.yaml", "listen: 127.0.0.1:8200\naudit:\n  chekpoint_every: 5\n");
    const e = errorOf(() => loadConfig({ file: f, env: {} }));
    expect(e.code).toBe("FR_CONFIG_INVALID");
    expect(e.message).toContain('unknown key "audit.chekpoint_every"');
    expect(e.message).toContain(f);
    expect(e.message.split("\n")).toHaveLength(1);
  });

  it("a wrong value names the key", () => {
    const e = errorOf(() =>
      loadConfig({ file: file("bad.yaml", "limits:\n  max_body_bytes: lots\n"), env: {} }),
    );
    expect(e.message).toContain('key "limits.max_body_bytes"');
    const s = errorOf(() => loadConfig({ file: file("seal.yaml", "seal:\n  type: magic\n"), env: {} }));
    expect(s.message).toContain("seal.type");
  });

  it("a listen port above 65535 is refused at load, not by the socket at listen time", () => {
    expect(loadConfig({ file: file("p0.yaml", "listen: 127.0.0.1:0\n"), env: {} }).listen).toBe(
      "127.0.0.1:0",
    );
    const e = errorOf(() => loadConfig({ file: file("p-big.yaml", "listen: 127.0.0.1:99999\n"), env: {} }));
    expect(e.code).toBe("FR_CONFIG_INVALID");
    expect(e.message).toContain('key "listen": the port must be 0 to 65535');
  });

  it("pki durations are checked at load and name their key", () => {
    const ok = loadConfig({ file: file("crl.yaml", "pki:\n  crl_validity: 1h30m\n"), env: {} });
    expect(ok.pki?.crl_validity).toBe("1h30m");
    for (const [key, bad] of [
      ["crl_validity", "forever"],
      ["ocsp_validity", "0s"],
      ["crl_rebuild_interval", "12 hours"],
    ] as const) {
      const e = errorOf(() =>
        loadConfig({ file: file(`pki-${key}.yaml`, `pki:\n  ${key}: ${bad}\n`), env: {} }),
      );
      expect(e.code).toBe("FR_CONFIG_INVALID");
      expect(e.message).toContain(`key "pki.${key}": must be a positive duration`);
    }
  });

  it("malformed YAML and a missing file are clear errors", () => {
    const y = errorOf(() => loadConfig({ file: file("broken.yaml", "listen: [oops\n"), env: {} }));
    expect(y.code).toBe("FR_CONFIG_INVALID");
    expect(y.message).toContain("YAML syntax error");
    const m = errorOf(() => loadConfig({ file: join(dir, "nope.yaml"), env: {} }));
    expect(m.code).toBe("FR_CONFIG_UNREADABLE");
    expect(m.message).toContain("ENOENT");
    const top = errorOf(() => loadConfig({ file: file("list.yaml", "- a\n- b\n"), env: {} }));
    expect(top.message).toContain("mapping");
  });

  it("FLEETROOT_* variables override the file; unknown ones are refused by name", () => {
    const f = file("env.yaml", "listen: 127.0.0.1:8200\n");
    const c = loadConfig({
      file: f,
      env: {
        FLEETROOT_LISTEN: "127.0.0.1:8300",
        FLEETROOT_AUDIT_CHECKPOINT_EVERY: "7",
        FLEETROOT_SEAL_TYPE: "pkcs11",
        FLEETROOT_SEAL_KEY: "pkcs11:token=t;object=o",
        FLEETROOT_TOKEN: "ignored",
      },
    });
    expect(c.listen).toBe("127.0.0.1:8300");
    expect(c.audit.checkpoint_every).toBe(7);
    expect(c.seal).toEqual({ type: "pkcs11", key: "pkcs11:token=t;object=o" });
    const e = errorOf(() => loadConfig({ file: f, env: { FLEETROOT_LISTN: "x" } }));
    expect(e.message).toContain("FLEETROOT_LISTN");
    const v = errorOf(() => loadConfig({ file: f, env: { FLEETROOT_LISTEN: "nonsense" } }));
    expect(v.message).toContain("FLEETROOT_LISTEN");
  });
  it("FLEETROOT_PKI_CRL_VALIDITY=3600 is read as seconds, not refused as a number", () => {
    const c = loadConfig({ env: { FLEETROOT_PKI_CRL_VALIDITY: "3600" } });
    expect(c.pki?.crl_validity).toBe("3600");
    const y = loadConfig({ file: file("dur-num.yaml", "pki:\n  ocsp_validity: 900\n"), env: {} });
    expect(y.pki?.ocsp_validity).toBe("900s");
  });

  it("a string key set to digits through the environment stays a string", () => {
    const c = loadConfig({ env: { FLEETROOT_DATA_DIR: "2024", FLEETROOT_AUDIT_PATH: "007" } });
    expect(c.data_dir).toBe("2024");
    expect(c.audit.path).toBe("007");
    expect(loadConfig({ env: { FLEETROOT_AUDIT_CHECKPOINT_EVERY: "50" } }).audit.checkpoint_every).toBe(50);
  });

  it("blames the file, not an unrelated variable, for a bad key in the same section", () => {
    const e = errorOf(() =>
      loadConfig({
        file: file("pki-bad.yaml", "pki:\n  ocsp_validity: soon\n"),
        env: { FLEETROOT_PKI_CRL_VALIDITY: "1h" },
      }),
    );
    expect(e.message).toContain("pki-bad.yaml");
    expect(e.message).not.toContain("FLEETROOT_PKI_CRL_VALIDITY");
  });
});
