import crypto from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FleetError } from "../errors/index.js";
import { ecdsaRawToDer } from "./der.js";
import { softHsmModule } from "./pkcs11/backend.js";
import { defaultPkcs11Modules, requestKeyPolicy, requestKeyUri } from "./request-uri.js";
import { parseKeyUri, redactKeyUri } from "./uri.js";

function uriError(uri: string): FleetError {
  try {
    parseKeyUri(uri);
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    expect((e as FleetError).code).toBe("FR_KEY_URI");
    return e as FleetError;
  }
  throw new Error(`parseKeyUri accepted ${uri}`);
}

describe("parseKeyUri", () => {
  it("parses file: URIs, absolute, relative and file:///", () => {
    expect(parseKeyUri("file:/etc/fleetroot/ca.pem")).toEqual({
      scheme: "file",
      path: "/etc/fleetroot/ca.pem",
    });
    expect(parseKeyUri("file:keys/ca.pem")).toEqual({ scheme: "file", path: path.resolve("keys/ca.pem") });
    expect(parseKeyUri("file:///var/lib/k%20ey.pem")).toEqual({ scheme: "file", path: "/var/lib/k ey.pem" });
    uriError("file:");
  });

  it("parses RFC 7512 path and query attributes with percent-decoding", () => {
    const p = parseKeyUri(
      "pkcs11:token=My%20Token;object=ca%2Dkey;id=%01%02%ff;type=private;serial=abc;slot-id=7;manufacturer=SoftHSM" +
        "?pin-value=12%2634&module-path=/usr/lib/softhsm/libsofthsm2.so",
    );
    expect(p).toEqual({
      scheme: "pkcs11",
      token: "My Token",
      object: "ca-key",
      id: Uint8Array.from([1, 2, 255]),
      type: "private",
      serial: "abc",
      slotId: 7n,
      pinValue: "12&34",
      modulePath: "/usr/lib/softhsm/libsofthsm2.so",
    });
    expect(parseKeyUri("pkcs11:token=t?pin-source=file:/run/pin")).toMatchObject({ pinSource: "/run/pin" });
    expect(parseKeyUri("pkcs11:token=t?pin-source=/run/pin")).toMatchObject({ pinSource: "/run/pin" });
    expect(parseKeyUri("PKCS11:token=t;x-vendor=1")).toEqual({ scheme: "pkcs11", token: "t" });
  });

  it("names what is wrong in a malformed URI", () => {
    expect(uriError("pkcs11:token=a;id=%g1").message).toContain('"id"');
    expect(uriError("pkcs11:token=a;token=b").message).toContain("twice");
    expect(uriError("pkcs11:token=a;noequals").message).toContain("noequals");
    expect(uriError("pkcs11:token=a;type=key").message).toContain('"key"');
    expect(uriError("pkcs11:token=a;slot-id=x").message).toContain("slot-id");
    expect(uriError("pkcs11:token=a?colour=red").message).toContain("colour");
    expect(uriError("pkcs11:token=a?pin-value=1&pin-source=/p").message).toContain("not both");
    expect(uriError("pkcs11:object=%C3%28").message).toContain("UTF-8");
    expect(uriError("vault:transit/key").message).toContain('"vault:"');
    expect(uriError("just-a-path.pem").message).toContain("no scheme");
  });

  it("never repeats a PIN in an error", () => {
    expect(uriError("pkcs11:token=a?pin-value=se%zzcret").message).not.toContain("se");
    expect(uriError("pkcs11:token=a?pin-value").message).not.toMatch(/secret/);
  });

  it("never repeats a PIN given under a misspelt or miscased attribute name", () => {
    for (const uri of [
      "pkcs11:token=a?PIN-VALUE=s3cr3t",
      "pkcs11:token=a?pin_value=s3cr3t",
      "pkcs11:token=a? pin-value=s3cr3t",
      "pkcs11:token=a;Pin-Value=s3cr3t",
      "pkcs11:token=a?s3cr3t",
    ]) {
      expect(uriError(uri).message).not.toContain("s3cr3t");
    }
    expect(uriError("pkcs11:token=a?PIN-VALUE=s3cr3t").message).toContain('"PIN-VALUE"');
  });

  it("redacts pin-value wherever it sits", () => {
    expect(redactKeyUri("pkcs11:token=a?pin-value=1234")).toBe("pkcs11:token=a");
    expect(redactKeyUri("pkcs11:token=a?pin-value=1234&module-path=/m.so")).toBe(
      "pkcs11:token=a?module-path=/m.so",
    );
    expect(redactKeyUri("pkcs11:token=a?module-path=/m.so&pin-value=1234")).toBe(
      "pkcs11:token=a?module-path=/m.so",
    );
    expect(redactKeyUri("file:/k.pem")).toBe("file:/k.pem");
  });
});

describe("ecdsaRawToDer", () => {
  it("matches node's DER encoding of the same signature, including high-bit and short integers", () => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    for (let i = 0; i < 64; i++) {
      const data = Buffer.from(`m${i}`);
      const raw = crypto.sign("sha256", data, { key: privateKey, dsaEncoding: "ieee-p1363" });
      const der = ecdsaRawToDer(raw);
      expect(crypto.verify("sha256", data, { key: publicKey, dsaEncoding: "der" }, der)).toBe(true);
    }
    // r with a leading zero byte and s with the high bit set.
    const raw = Buffer.concat([
      Buffer.from([0, 0x12]),
      Buffer.alloc(30, 1),
      Buffer.from([0x80]),
      Buffer.alloc(31, 2),
    ]);
    const der = Buffer.from(ecdsaRawToDer(raw));
    // r loses its zero byte (31 bytes); s gains one (33 bytes) so it does not read as negative.
    expect(der.subarray(0, 5).toString("hex")).toBe("3044021f12");
    expect(der.subarray(2 + 2 + 31, 2 + 2 + 31 + 4).toString("hex")).toBe("02210080");
    expect(der.length).toBe(2 + 0x44);
  });
});

describe("requestKeyUri (a key URI sent to the server)", () => {
  // realpath: the temporary directory may itself sit behind a symbolic link (/tmp on macOS).
  const root = realpathSync(mkdtempSync(path.join(os.tmpdir(), "fr-request-uri-")));
  const keysDir = path.join(root, "keys");
  const outside = path.join(root, "outside");
  mkdirSync(keysDir);
  mkdirSync(outside);
  /** Stands in for a PKCS#11 module: nothing here loads it. */
  const module = path.join(root, "libmodule.so");
  writeFileSync(module, "not a library");
  const policy = requestKeyPolicy({ fileDirs: [keysDir], pkcs11Modules: [module] });

  async function refusal(uri: string, field = "key_ref", p = policy): Promise<FleetError> {
    try {
      await requestKeyUri(uri, field, p);
    } catch (e) {
      expect(e).toMatchObject({ code: "FR_KEY_URI", status: 400 });
      return e as FleetError;
    }
    throw new Error(`requestKeyUri accepted ${uri}`);
  }

  it("takes file: paths under an allowed directory, file:/// URLs and pkcs11:, and refuses relative file: paths naming the field", async () => {
    expect(await requestKeyUri(undefined, "key_ref", policy)).toBeUndefined();
    for (const ok of [
      `file:${keysDir}/k.pem`,
      `file://${keysDir}/sub/new/k.pem`,
      "pkcs11:token=t;object=o",
      `pkcs11:token=t;object=o?module-path=${module}`,
    ])
      expect(await requestKeyUri(ok, "key_ref", policy)).toBe(ok);
    for (const rel of ["file:keys/ca.pem", "file:../../x", "file:./k.pem", "file:~/k.pem"]) {
      expect((await refusal(rel)).message).toMatch(
        /key_ref "file:.*" is a relative path.*give an absolute one/,
      );
    }
    await expect(requestKeyUri("tpm:x", "uri", policy)).rejects.toThrow(/unknown key URI scheme/);
  });

  it("refuses a file: path outside every allowed directory, naming the field, the path and keys.file_dirs", async () => {
    const e = await refusal(`file:${outside}/ca.key`, "identity_ca_key");
    expect(e.message).toContain(`identity_ca_key "file:${outside}/ca.key" names ${outside}/ca.key`);
    expect(e.message).toContain(`must be under ${keysDir}`);
    expect(e.message).toContain("add the directory to keys.file_dirs in the server configuration");
    // The directory itself is not a key, and a sibling sharing its prefix is not inside it.
    await refusal(`file:${keysDir}`);
    await refusal(`file:${keysDir}-other/k.pem`);
    const none = requestKeyPolicy({ fileDirs: [], pkcs11Modules: [] });
    expect((await refusal(`file:${keysDir}/k.pem`, "uri", none)).message).toContain(
      "no directory is allowed for keys named in requests",
    );
  });

  it("resolves .. segments and symbolic links before deciding", async () => {
    await refusal(`file:${keysDir}/../outside/ca.key`);
    await refusal(`file:${keysDir}/../../../../etc/fleetroot-x.key`);
    symlinkSync(outside, path.join(keysDir, "out"));
    const viaLink = await refusal(`file:${keysDir}/out/new/ca.key`);
    expect(viaLink.message).toContain("(through a symbolic link)");
    expect(viaLink.message).not.toContain(`${outside}/new`); // where the link points is not told
    // A link to an existing file outside, and a link whose target does not exist yet.
    writeFileSync(path.join(outside, "existing.pem"), "x");
    symlinkSync(path.join(outside, "existing.pem"), path.join(keysDir, "existing.pem"));
    await refusal(`file:${keysDir}/existing.pem`);
    symlinkSync(path.join(outside, "later.pem"), path.join(keysDir, "later.pem"));
    expect((await refusal(`file:${keysDir}/later.pem`)).message).toContain("does not exist");
    symlinkSync(path.join(outside, "nodir"), path.join(keysDir, "dangling-dir"));
    await refusal(`file:${keysDir}/dangling-dir/k.pem`);
    // A link that stays inside is fine.
    symlinkSync(path.join(keysDir, "sub"), path.join(keysDir, "inner"));
    mkdirSync(path.join(keysDir, "sub"));
    expect(await requestKeyUri(`file:${keysDir}/inner/k.pem`, "key_ref", policy)).toBeDefined();
    expect(existsSync(path.join(outside, "new"))).toBe(false);
  });

  it("allows a directory that does not exist yet, and one reached through a symbolic link", async () => {
    const later = path.join(root, "later", "keys");
    const linked = path.join(root, "linked-keys");
    symlinkSync(keysDir, linked);
    const p = requestKeyPolicy({ fileDirs: [later, linked], pkcs11Modules: [] });
    expect(await requestKeyUri(`file:${later}/a/b.pem`, "uri", p)).toBeDefined();
    expect(await requestKeyUri(`file:${keysDir}/k.pem`, "uri", p)).toBeDefined();
    expect(await requestKeyUri(`file:${linked}/k.pem`, "uri", p)).toBeDefined();
    expect(existsSync(later)).toBe(false); // checking creates nothing
  });

  it("refuses a module-path that is not an allowed module, compares real paths, and never shows a PIN", async () => {
    const other = path.join(root, "libother.so");
    writeFileSync(other, "not a library either");
    const e = await refusal(`pkcs11:token=t;object=o?module-path=${other}&pin-value=s3cr3tpin`);
    expect(e.message).toContain(`key_ref "pkcs11:token=t;object=o?module-path=${other}"`);
    expect(e.message).toContain(`names the PKCS#11 module ${other}`);
    expect(e.message).toContain("add it to keys.pkcs11_modules in the server configuration");
    expect(e.message).not.toContain("s3cr3tpin");
    await refusal(`pkcs11:token=t;object=o?module-path=${root}/missing.so`);
    await refusal(`pkcs11:token=t;object=o?module-path=${encodeURIComponent(`${root}/x/../libother.so`)}`);
    expect((await refusal("pkcs11:token=t;object=o?module-path=libmodule.so")).message).toContain(
      "relative module-path",
    );
    // A symbolic link to the allowed module is that module; one to another library is not.
    symlinkSync(module, path.join(root, "alias.so"));
    symlinkSync(other, path.join(outside, "libmodule.so"));
    expect(await requestKeyUri(`pkcs11:token=t?module-path=${root}/alias.so`, "uri", policy)).toBeDefined();
    await refusal(`pkcs11:token=t?module-path=${outside}/libmodule.so`);
    // `..` is taken as the backend takes it (lexically), so a link before it cannot swap the file loaded.
    mkdirSync(path.join(outside, "deep"));
    symlinkSync(path.join(outside, "deep"), path.join(root, "hop"));
    await refusal(`pkcs11:token=t?module-path=${root}/hop/../libother.so`);
    expect(
      await requestKeyUri(`pkcs11:token=t?module-path=${root}/hop/../libmodule.so`, "uri", policy),
    ).toBeDefined();
    // Without module-path the server's default module is used: always allowed.
    const none = requestKeyPolicy({ fileDirs: [], pkcs11Modules: [] });
    expect(await requestKeyUri("pkcs11:token=t;object=o?pin-value=1", "uri", none)).toBeDefined();
    expect((await refusal(`pkcs11:token=t?module-path=${module}`, "uri", none)).message).toContain(
      "none is allowed",
    );
  });

  it("refuses a pin-source outside keys.file_dirs before reading it, whether or not the file exists", async () => {
    writeFileSync(path.join(outside, "pin"), "1234\n");
    for (const pin of [
      `${outside}/pin`,
      `${outside}/no-such-pin`,
      `file:${outside}/pin`,
      `${keysDir}/../outside/pin`,
    ]) {
      const e = await refusal(`pkcs11:token=t;object=o?pin-source=${encodeURIComponent(pin)}`, "uri");
      expect(e.message).toMatch(
        /uri "pkcs11:token=t;object=o\?pin-source=.*" names the PIN file .*outside the allowed directories/,
      );
      expect(e.message).toContain("keys.file_dirs");
    }
    symlinkSync(path.join(outside, "pin"), path.join(keysDir, "pin-link"));
    expect((await refusal(`pkcs11:token=t?pin-source=${keysDir}/pin-link`)).message).toContain(
      "(through a symbolic link)",
    );
    expect((await refusal("pkcs11:token=t?pin-source=pins/p")).message).toContain("names the PIN file");
    writeFileSync(path.join(keysDir, "pin"), "1234\n");
    const ok = `pkcs11:token=t;object=o?pin-source=${keysDir}/pin`;
    expect(await requestKeyUri(ok, "uri", policy)).toBe(ok);
    expect(await requestKeyUri(`pkcs11:token=t?pin-source=file:${keysDir}/pin`, "uri", policy)).toBeDefined();
  });

  it("defaults the modules to SoftHSM2 and FLEETROOT_PKCS11_MODULE, as the PKCS#11 backend falls back", () => {
    expect(defaultPkcs11Modules({})).toEqual([softHsmModule]);
    expect(defaultPkcs11Modules({ FLEETROOT_PKCS11_MODULE: "/opt/hsm/lib.so" })).toEqual([
      softHsmModule,
      "/opt/hsm/lib.so",
    ]);
    expect(defaultPkcs11Modules({ FLEETROOT_PKCS11_MODULE: softHsmModule })).toEqual([softHsmModule]);
    expect(() => requestKeyPolicy({ fileDirs: ["keys"], pkcs11Modules: [] })).toThrow(/not an absolute/);
  });
});
