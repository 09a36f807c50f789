import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fail } from "../../errors/index.js";
import { checkTokenNamed } from "../uri.js";
import { mapPkcs11Error } from "./errors.js";
import { type Handle, isPkcs11Error, mechanismName, type Pkcs11Lib, pkcs11js } from "./lib.js";

/** Which token a URI names (RFC 7512 token, serial, slot-id). */
export interface TokenSelector {
  readonly token?: string;
  readonly serial?: string;
  readonly slotId?: bigint;
}

/**
 * One logged-in session on one token. PKCS#11 allows one active operation per session, and pkcs11js's
 * async calls run on worker threads, so every use goes through `run`, which queues them.
 */
export class TokenSession {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly mechanisms: Set<number>;

  constructor(
    readonly lib: Pkcs11Lib,
    readonly slot: Handle,
    readonly label: string,
    readonly handle: Handle,
    readonly pinDigest: Buffer,
    readonly loggedInHere: boolean,
  ) {
    this.mechanisms = new Set(lib.C_GetMechanismList(slot));
  }

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** FR_KEY_MECHANISM unless the token lists the mechanism; `purpose` says what it was needed for. */
  requireMechanism(mech: number, purpose: string): void {
    if (!this.mechanisms.has(mech)) {
      fail(
        "FR_KEY_MECHANISM",
        `token "${this.label}" does not support ${mechanismName(mech)} (needed for ${purpose})`,
      );
    }
  }
}

/** One loaded, initialized PKCS#11 module, shared by every KeyManager in the process. */
export class Pkcs11Module {
  refs = 0;
  private readonly sessions = new Map<string, TokenSession>();

  constructor(
    readonly path: string,
    readonly lib: Pkcs11Lib,
    /** False when someone else in the process initialized it; then we must not finalize it. */
    private readonly ownsInit: boolean,
  ) {}

  /** The logged-in session for the selected token, opened on first use. */
  session(sel: TokenSelector, pin: string): TokenSession {
    const { slot, label } = this.findToken(sel);
    const key = slot.toString("hex");
    const digest = crypto.createHash("sha256").update(pin, "utf8").digest();
    const cached = this.sessions.get(key);
    if (cached) {
      // PKCS#11 login state is per process and token: a second URI with another PIN would otherwise
      // ride on the first login unchecked.
      if (!crypto.timingSafeEqual(cached.pinDigest, digest)) {
        fail("FR_KEY_PIN", `token "${label}" is already logged in by this process with a different PIN`);
      }
      return cached;
    }
    let handle: Handle;
    try {
      handle = this.lib.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    } catch (e) {
      throw mapPkcs11Error(e, `opening a session on token "${label}"`);
    }
    let loggedInHere = true;
    try {
      this.lib.C_Login(handle, pkcs11js.CKU_USER, pin);
    } catch (e) {
      if (isPkcs11Error(e) && e.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) {
        loggedInHere = false;
      } else {
        this.lib.C_CloseSession(handle);
        throw mapPkcs11Error(e, `logging in to token "${label}"`);
      }
    }
    const s = new TokenSession(this.lib, slot, label, handle, digest, loggedInHere);
    this.sessions.set(key, s);
    return s;
  }

  private findToken(sel: TokenSelector): { slot: Handle; label: string } {
    checkTokenNamed(sel);
    const seen: string[] = [];
    const matches: { slot: Handle; label: string }[] = [];
    let slots: Handle[];
    try {
      slots = this.lib.C_GetSlotList(true);
    } catch (e) {
      throw mapPkcs11Error(e, `listing the slots of ${this.path}`);
    }
    for (const slot of slots) {
      const info = this.lib.C_GetTokenInfo(slot);
      if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) continue;
      const label = info.label.trimEnd();
      seen.push(label);
      if (sel.token !== undefined && label !== sel.token) continue;
      if (sel.serial !== undefined && info.serialNumber.trimEnd() !== sel.serial) continue;
      if (sel.slotId !== undefined && slotIdOf(slot) !== sel.slotId) continue;
      matches.push({ slot, label });
    }
    const wanted = describe(sel);
    if (matches.length === 0) {
      fail(
        "FR_KEY_TOKEN",
        `no token with ${wanted} in ${this.path}; tokens present: ${seen.length ? seen.map((l) => `"${l}"`).join(", ") : "none"}`,
      );
    }
    if (matches.length > 1) fail("FR_KEY_URI", `several tokens match ${wanted}; add serial= or slot-id=`);
    return matches[0]!;
  }

  /** Logs out, closes sessions and finalizes the module when this process initialized it. */
  shutdown(): void {
    for (const s of this.sessions.values()) {
      try {
        if (s.loggedInHere) s.lib.C_Logout(s.handle);
      } catch {
        // the session may already be gone; finalizing below releases everything anyway
      }
      try {
        s.lib.C_CloseSession(s.handle);
      } catch {
        // as above
      }
    }
    this.sessions.clear();
    if (this.ownsInit) {
      try {
        this.lib.C_Finalize();
      } catch {
        // nothing more to release
      }
    }
    this.lib.close();
  }
}

function describe(sel: TokenSelector): string {
  const parts: string[] = [];
  if (sel.token !== undefined) parts.push(`label "${sel.token}"`);
  if (sel.serial !== undefined) parts.push(`serial "${sel.serial}"`);
  if (sel.slotId !== undefined) parts.push(`slot-id ${sel.slotId}`);
  return parts.join(", ");
}

/** CK_SLOT_ID as pkcs11js returns it: a native-endian CK_ULONG in a Buffer. */
function slotIdOf(slot: Handle): bigint {
  return slot.length >= 8 ? slot.readBigUInt64LE(0) : BigInt(slot.readUInt32LE(0));
}

const modules = new Map<string, Pkcs11Module>();

/** Loads and initializes a module once per process; pair every call with releaseModule. */
export function acquireModule(modulePath: string): Pkcs11Module {
  const abs = path.resolve(modulePath);
  let m = modules.get(abs);
  if (!m) {
    if (!fs.existsSync(abs)) {
      fail(
        "FR_KEY_TOKEN",
        `PKCS#11 module ${abs} does not exist; install it or set module-path in the URI or FLEETROOT_PKCS11_MODULE`,
      );
    }
    const lib = new pkcs11js.PKCS11();
    try {
      lib.load(abs);
    } catch (e) {
      fail("FR_KEY_TOKEN", `cannot load PKCS#11 module ${abs}: ${(e as Error).message}`, { cause: e });
    }
    let ownsInit = true;
    try {
      // Without OS locking the async calls crash the process (they run on libuv worker threads).
      lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (e) {
      if (isPkcs11Error(e) && e.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) ownsInit = false;
      else {
        lib.close();
        throw mapPkcs11Error(e, `initializing PKCS#11 module ${abs}`);
      }
    }
    m = new Pkcs11Module(abs, lib, ownsInit);
    modules.set(abs, m);
  }
  m.refs++;
  return m;
}

export function releaseModule(m: Pkcs11Module): void {
  m.refs--;
  if (m.refs > 0) return;
  modules.delete(m.path);
  m.shutdown();
}
