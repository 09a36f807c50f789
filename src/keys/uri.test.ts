import crypto from "node:crypto";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FleetError } from "../errors/index.js";
import { ecdsaRawToDer } from "./der.js";
import { parseKeyUri, redactKeyUri, requestKeyUri } from "./uri.js";

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
  it("takes absolute file: paths, file:/// URLs and pkcs11:, and refuses relative file: paths naming the field", () => {
    expect(requestKeyUri(undefined, "key_ref")).toBeUndefined();
    for (const ok of ["file:/var/lib/k.pem", "file:///var/lib/k.pem", "pkcs11:token=t;object=o"])
      expect(requestKeyUri(ok, "key_ref")).toBe(ok);
    for (const rel of ["file:keys/ca.pem", "file:../../x", "file:./k.pem", "file:~/k.pem"]) {
      let err: unknown;
      try {
        requestKeyUri(rel, "key_ref");
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: "FR_KEY_URI", status: 400 });
      expect((err as Error).message).toMatch(/key_ref "file:.*" is a relative path.*give an absolute one/);
    }
    expect(() => requestKeyUri("tpm:x", "uri")).toThrow(/unknown key URI scheme/);
  });
});
