import { fail } from "../errors/index.js";

/** Device ids appear in certificate names and URLs: a conservative character set. */
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})$/;
const MAX_LABELS = 32;
const MAX_LABEL_VALUE = 256;

/** Control characters (C0) have no place in names and labels shown in tables and logs. */
const hasControl = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) < 0x20);

export function checkDeviceId(id: unknown, field = "device_id"): string {
  if (typeof id !== "string" || !DEVICE_ID.test(id)) {
    fail(
      "FR_VALIDATION",
      `${field} must be 1-128 letters, digits, ".", "_", ":", "@" or "-", starting with a letter or digit`,
    );
  }
  return id;
}

export function checkName(name: unknown, field = "name"): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 256 || hasControl(name)) {
    fail("FR_VALIDATION", `${field} must be 1-256 printable characters`);
  }
  return name;
}

/** Labels: at most 32 string pairs; keys like Kubernetes label keys, values up to 256 characters. */
export function checkLabels(labels: unknown, field = "labels"): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (typeof labels !== "object" || Array.isArray(labels))
    fail("FR_VALIDATION", `${field} must be an object`);
  const entries = Object.entries(labels as Record<string, unknown>);
  if (entries.length > MAX_LABELS) fail("FR_VALIDATION", `${field} holds more than ${MAX_LABELS} labels`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k)) {
      fail(
        "FR_VALIDATION",
        `label key "${k.slice(0, 64)}" must be 1-63 letters, digits, ".", "_", "/" or "-"`,
      );
    }
    if (typeof v !== "string" || v.length > MAX_LABEL_VALUE || hasControl(v)) {
      fail(
        "FR_VALIDATION",
        `label "${k}" must be a string of at most ${MAX_LABEL_VALUE} printable characters`,
      );
    }
    out[k] = v;
  }
  return out;
}

/** "k=v,k2=v2" (query strings) → labels. */
export function parseLabelSelector(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const i = part.indexOf("=");
    if (i <= 0) fail("FR_VALIDATION", `label filter "${part.slice(0, 64)}" must be key=value`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return checkLabels(out, "label filter");
}
