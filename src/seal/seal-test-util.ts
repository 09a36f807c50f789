import { expect } from "vitest";
import { FleetError } from "../errors/index.js";

/** Test helper: the FleetError code a call fails with, or undefined when it succeeds. */
export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(FleetError);
    return (e as FleetError).code;
  }
  return undefined;
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
