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
/** Stands in for a PKCS#11 module file (the load does not open it). */
const fakeModule = file("libfake-pkcs11.so", "");
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
    const sealKey = `pkcs11:token=t;object=o?pin-source=/etc/fleetroot/pin&module-path=${fakeModule}`;
    const f = file("env.yaml", "listen: 127.0.0.1:8200\n");
    const c = loadConfig({
      file: f,
      env: {
        FLEETROOT_LISTEN: "127.0.0.1:8300",
        FLEETROOT_AUDIT_CHECKPOINT_EVERY: "7",
        FLEETROOT_SEAL_TYPE: "pkcs11",
        FLEETROOT_SEAL_KEY: sealKey,
        FLEETROOT_TOKEN: "ignored",
      },
    });
    expect(c.listen).toBe("127.0.0.1:8300");
    expect(c.audit.checkpoint_every).toBe(7);
    expect(c.seal).toEqual({ type: "pkcs11", key: sealKey });
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

describe("keys: what a key URI in an API request may name", () => {
  const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  it("defaults file_dirs to <data_dir>/keys (resolvePaths) and leaves pkcs11_modules to the key module", () => {
    const c = loadConfig({ file: file("keys-default.yaml", "data_dir: /srv/fr\n"), env: {} });
    expect(c.keys).toBeUndefined();
    expect(resolvePaths(c).keyFileDirs).toEqual(["/srv/fr/keys"]);
  });

  it("takes lists of absolute paths from the file; an empty list allows none", () => {
    const c = loadConfig({
      file: file(
        "keys.yaml",
        "keys:\n  file_dirs: [/srv/keys/, /var/lib/fr/keys]\n  pkcs11_modules:\n    - /opt/hsm/libhsm.so\n",
      ),
      env: {},
    });
    expect(c.keys).toEqual({
      file_dirs: ["/srv/keys/", "/var/lib/fr/keys"],
      pkcs11_modules: ["/opt/hsm/libhsm.so"],
    });
    expect(resolvePaths(c).keyFileDirs).toEqual(["/srv/keys", "/var/lib/fr/keys"]);
    const none = loadConfig({ file: file("keys-none.yaml", "keys: {file_dirs: []}\n"), env: {} });
    expect(resolvePaths(none).keyFileDirs).toEqual([]);
  });

  it("a relative path, a single path instead of a list or an unknown key is one line naming the key and the file", () => {
    const cases: [string, string, string][] = [
      [
        "keys-rel.yaml",
        "keys:\n  file_dirs: [/srv/keys, data/keys]\n",
        'key "keys.file_dirs.1": must be the absolute path of a directory, not "data/keys"',
      ],
      [
        "keys-mod.yaml",
        "keys:\n  pkcs11_modules: [libsofthsm2.so]\n",
        'key "keys.pkcs11_modules.0": must be the absolute path of a PKCS#11 module, not "libsofthsm2.so"',
      ],
      [
        "keys-num.yaml",
        "keys:\n  file_dirs: [7]\n",
        'key "keys.file_dirs.0": must be the absolute path of a directory, not 7',
      ],
      [
        "keys-scalar.yaml",
        "keys:\n  file_dirs: /srv/keys\n",
        'key "keys.file_dirs": must be a list of absolute paths, such as [/var/lib/fleetroot/keys]',
      ],
      ["keys-typo.yaml", "keys:\n  file_dir: [/srv/keys]\n", 'unknown key "keys.file_dir"'],
    ];
    for (const [name, text, want] of cases) {
      const e = errorOf(() => loadConfig({ file: file(name, text), env: {} }));
      expect(e.code).toBe("FR_CONFIG_INVALID");
      expect(e.message).toMatch(new RegExp(`: ${escape(`${join(dir, name)}: ${want}`)}$`));
      expect(e.message.split("\n")).toHaveLength(1);
    }
  });

  it("FLEETROOT_KEYS_FILE_DIRS and FLEETROOT_KEYS_PKCS11_MODULES take comma-separated paths", () => {
    const c = loadConfig({
      file: file("keys-env.yaml", "keys:\n  file_dirs: [/from/file]\n"),
      env: { FLEETROOT_KEYS_FILE_DIRS: "/srv/a, /srv/b,", FLEETROOT_KEYS_PKCS11_MODULES: "" },
    });
    expect(c.keys).toEqual({ file_dirs: ["/srv/a", "/srv/b"], pkcs11_modules: [] });
    const e = errorOf(() => loadConfig({ env: { FLEETROOT_KEYS_FILE_DIRS: "/srv/a,keys" } }));
    expect(e.message).toContain(
      ': environment FLEETROOT_KEYS_FILE_DIRS: key "keys.file_dirs.1": must be the absolute path of a directory, not "keys"',
    );
  });
});

/** The one-line message loadConfig fails with for a file of these bytes. */
function problemOf(name: string, bytes: string | Buffer): FleetError {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  const e = errorOf(() => loadConfig({ file: p, env: {} }));
  expect(e.message).toContain(p);
  expect(e.message.split("\n")).toHaveLength(1);
  return e;
}

describe("config file problems are one line naming the file, the place and what to do", () => {
  it("two YAML documents: names the line of the second one instead of the parser's API advice", () => {
    const e = problemOf("two-docs.yaml", "listen: 127.0.0.1:8200\n---\nlisten: 127.0.0.1:9200\n");
    expect(e.code).toBe("FR_CONFIG_INVALID");
    expect(e.message).toContain('line 2: a second YAML document starts here ("---")');
    expect(e.message).not.toContain("parseAllDocuments");
    // A leading "---" is one document, as usual.
    expect(loadConfig({ file: file("lead.yaml", "---\nlisten: 127.0.0.1:9201\n"), env: {} }).listen).toBe(
      "127.0.0.1:9201",
    );
  });

  it("a duplicate key names the key, its line and column", () => {
    const e = problemOf("dup-key.yaml", "listen: 127.0.0.1:8200\naudit:\n  path: a\n  path: b\n");
    expect(e.message).toContain('line 4, column 3: key "path" appears twice in the same mapping; keep one');
  });

  it("a tab used for indentation says to indent with spaces", () => {
    const e = problemOf("tab.yaml", "audit:\n\tpath: /var/log/audit.log\n");
    expect(e.message).toMatch(/tab\.yaml: line 2, column 1: a tab is used for indentation; .*spaces/);
    expect(e.message).not.toMatch(/column \d+:\s*\(|:\s*$/);
  });

  it("other syntax errors carry line and column, without the parser's trailing position", () => {
    const e = problemOf("flow.yaml", "a: [1, 2\n");
    expect(e.message).toMatch(/flow\.yaml: line 2, column 1: YAML syntax error: .*\]; check/);
    expect(e.message).not.toContain("at line");
  });

  it("a list or a single value at the top level says what was found and what is expected", () => {
    const l = problemOf("list.yaml", "- listen: 127.0.0.1:8200\n");
    expect(l.message).toContain("the file holds a list, but a configuration is a mapping of keys");
    expect(l.message).toContain('"listen: 127.0.0.1:8200"');
    const s = problemOf("scalar.yaml", "listen\n");
    expect(s.message).toContain('the file holds a single value ("listen"), but a configuration is a mapping');
  });

  it("an empty file, a file of comments and a trailing empty document all mean the defaults", () => {
    for (const [n, t] of [
      ["empty.yaml", ""],
      ["blank.yaml", "\n  \n"],
      ["comments.yaml", "# defaults\n"],
    ] as const) {
      expect(loadConfig({ file: file(n, t), env: {} }).listen).toBe("127.0.0.1:8200");
    }
    expect(loadConfig({ file: file("trailing.yaml", "listen: 127.0.0.1:8300\n---\n"), env: {} }).listen).toBe(
      "127.0.0.1:8300",
    );
  });

  it("a binary, UTF-16 or Latin-1 file is named as such, not reported as a bad mapping or value", () => {
    const bin = problemOf("bin.yaml", Buffer.from([0x30, 0x82, 0x01, 0x0a, 0x02, 0x00, 0x05]));
    expect(bin.message).toContain("the file is binary, not YAML text (a NUL byte at offset 5)");
    const u16 = problemOf("u16.yaml", Buffer.from("\ufefflisten: x\n", "utf16le"));
    expect(u16.message).toContain("UTF-16");
    const latin1 = problemOf("latin1.yaml", Buffer.from('data_dir: "/srv/caf\xe9"\n', "latin1"));
    expect(latin1.message).toContain("line 1, column 20: byte 0xe9 is not UTF-8");
    expect(latin1.message).toContain("save the file as UTF-8");
    const bom = loadConfig({ file: file("bom.yaml", "\ufefflisten: 127.0.0.1:8202\n"), env: {} });
    expect(bom.listen).toBe("127.0.0.1:8202");
  });

  it("a directory, a missing file or a file under a file is FR_CONFIG_UNREADABLE with the cause in words", () => {
    const cases: [string, RegExp][] = [
      [dir, /: it is a directory, not a file \(EISDIR\); name the YAML file inside it/],
      [
        join(dir, "nope.yaml"),
        /: no such file \(ENOENT\); check the path \(relative paths start from \/.*\)$/,
      ],
      [join(file("plain.yaml", "listen: 127.0.0.1:8200\n"), "x.yaml"), /a part of the path is a file/],
    ];
    for (const [p, want] of cases) {
      const e = errorOf(() => loadConfig({ file: p, env: {} }));
      expect(e.code).toBe("FR_CONFIG_UNREADABLE");
      expect(e.message).toContain(p);
      expect(e.message).toMatch(want);
      expect(e.message).not.toMatch(/: E[A-Z]+$/);
    }
  });
});

describe("messages for keys that go together", () => {
  const fail = (text: string, env: Record<string, string> = {}): string => {
    try {
      loadConfig({ file: file("pair.yaml", text), env });
    } catch (e) {
      return (e as FleetError).message;
    }
    throw new Error("loaded");
  };

  it("a tls key without the certificate names the variable that set it and what is missing", () => {
    const m = fail("listen: 127.0.0.1:8300\n", { FLEETROOT_TLS_CLIENT_CA_FILE: "/etc/ca.pem" });
    expect(m).toContain(
      'environment FLEETROOT_TLS_CLIENT_CA_FILE: key "tls.cert_file": is required once any tls key',
    );
    expect(m).not.toContain("expected string");
  });

  it("a pkcs11 seal without its key says the key is required", () => {
    expect(fail("seal: {type: pkcs11}\n")).toContain('key "seal.key": is required with seal.type pkcs11');
  });

  it("a seal key left over from another seal type says which type is in force and who set it", () => {
    const m = fail("seal: {type: pkcs11, key: 'pkcs11:token=a;object=b'}\n", {
      FLEETROOT_SEAL_TYPE: "shamir",
    });
    expect(m).toContain(
      'unknown key "seal.key" (seal.type is "shamir", set by environment FLEETROOT_SEAL_TYPE)',
    );
  });
});

describe("seal.key: a pkcs11 URI operator init could not use is refused at load", () => {
  const sealError = (key: string): FleetError =>
    errorOf(() =>
      loadConfig({ file: file("seal-key.yaml", `seal: {type: pkcs11, key: "${key}"}\n`), env: {} }),
    );
  const module = `module-path=${encodeURIComponent(fakeModule)}`;

  it("no object= or id=, no PIN or an unusable type= is one line naming seal.key and the file (regression: only init refused them)", () => {
    const cases: [string, string][] = [
      [`pkcs11:token=fleet?pin-value=1234&${module}`, "names no key; add object=LABEL (or id="],
      [`pkcs11:token=fleet;object=seal?${module}`, "gives no PIN; add pin-source=FILE (or pin-value="],
      [
        `pkcs11:token=fleet;object=seal;type=cert?pin-value=1234&${module}`,
        "says type=cert, which cannot wrap the seal's root key; use type=secret-key (AES-256) or type=private (RSA), or leave type= out",
      ],
    ];
    for (const [key, why] of cases) {
      const e = sealError(key);
      expect(e.code).toBe("FR_CONFIG_INVALID");
      expect(e.message).toContain(`${join(dir, "seal-key.yaml")}: key "seal.key": the pkcs11 URI `);
      expect(e.message).toContain(why);
      expect(e.message).not.toContain("1234");
      expect(e.message).not.toContain("\n");
    }
  });

  it("several problems are named together, and a variable that set the key is named as the source", () => {
    const both = sealError(`pkcs11:token=fleet?${module}`).message;
    expect(both).toContain("names no key; add object=LABEL (or id=…)");
    expect(both).toContain("gives no PIN; add pin-source=FILE (or pin-value=…)");

    const e = errorOf(() =>
      loadConfig({
        env: { FLEETROOT_SEAL_TYPE: "pkcs11", FLEETROOT_SEAL_KEY: `pkcs11:token=t;id=%01?${module}` },
      }),
    );
    expect(e.message).toContain(
      'environment FLEETROOT_SEAL_KEY: key "seal.key": the pkcs11 URI gives no PIN',
    );
  });

  it("a URI that names the token, the key and the PIN loads; the module is looked for only when opened", () => {
    // Tools that read the configuration (audit verify --config) may run where the HSM's module is not.
    const key = "pkcs11:token=fleet;object=seal?pin-value=1234&module-path=/nonexistent/libp11.so";
    expect(
      loadConfig({ file: file("seal-nomod.yaml", `seal: {type: pkcs11, key: "${key}"}\n`), env: {} }).seal,
    ).toEqual({ type: "pkcs11", key });
  });

  it("a URI that names the token, the key, the PIN and a module loads", () => {
    for (const key of [
      `pkcs11:token=fleet;object=seal?pin-source=/etc/fleetroot/pin&${module}`,
      `pkcs11:serial=42;id=%01;type=secret-key?pin-value=1234&${module}`,
      `pkcs11:slot-id=0;object=wrap;type=private?pin-source=file:/etc/fleetroot/pin&${module}`,
    ]) {
      const c = loadConfig({ file: file("seal-ok.yaml", `seal: {type: pkcs11, key: "${key}"}\n`), env: {} });
      expect(c.seal).toEqual({ type: "pkcs11", key });
    }
  });
});
