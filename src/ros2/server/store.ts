/**
 * The fleet's ROS 2 state, kept in the barrier (encrypted, on SQLite or PostgreSQL like every barrier
 * entry): the CA configuration with its key URIs and signed governance, named policies (sros2 policy XML as
 * given) and assignments of a policy to one device or to the devices carrying a set of labels.
 */
import type { Device } from "../../devices/index.js";
import { fail } from "../../errors/index.js";
import type { BarrierView } from "../../seal/index.js";
import type { StoredCa } from "./cas.js";
import type { FleetSettings } from "./config.js";

export interface FleetConfig {
  readonly version: 1;
  readonly source: "local" | "pki";
  readonly issuerId: string | undefined;
  readonly algorithm: string;
  readonly identity: StoredCa;
  readonly permissions: StoredCa;
  readonly settings: FleetSettings;
  readonly governanceXml: string;
  readonly governanceP7s: string;
  readonly updatedAt: string;
}

export interface StoredPolicy {
  readonly name: string;
  readonly xml: string;
  readonly updatedAt: string;
}

/** A policy for one device (by id) or for every device whose labels include all of `labels`. */
export interface Assignment {
  readonly name: string;
  readonly policy: string;
  readonly deviceId?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = <T>(b: Uint8Array | undefined): T | undefined =>
  b ? (JSON.parse(new TextDecoder().decode(b)) as T) : undefined;

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkObjectName(name: string, what: string): string {
  if (!NAME_RE.test(name))
    fail(
      "FR_VALIDATION",
      `${what} name "${name.slice(0, 80)}" must be 1–64 of A-Z a-z 0-9 . _ - (not first)`,
    );
  return name;
}

export class FleetRos2Store {
  constructor(private readonly view: BarrierView) {}

  async config(): Promise<FleetConfig | undefined> {
    return dec<FleetConfig>(await this.view.get("config"));
  }

  async requireConfig(): Promise<FleetConfig> {
    return (
      (await this.config()) ??
      fail("FR_ROS2_FLEET_NOT_CONFIGURED", "create them with `fleetroot ros2 fleet config`")
    );
  }

  async putConfig(c: FleetConfig): Promise<void> {
    await this.view.put("config", enc(c));
  }

  async policy(name: string): Promise<StoredPolicy | undefined> {
    return dec<StoredPolicy>(await this.view.get(`policies/${name}`));
  }

  async putPolicy(p: StoredPolicy): Promise<void> {
    await this.view.put(`policies/${p.name}`, enc(p));
  }

  async deletePolicy(name: string): Promise<boolean> {
    const users = (await this.assignments()).filter((a) => a.policy === name).map((a) => a.name);
    if (users.length) {
      fail("FR_CONFLICT", `policy "${name}" is used by assignment(s) ${users.join(", ")}; delete them first`);
    }
    return this.view.delete(`policies/${name}`);
  }

  async policies(): Promise<string[]> {
    return (await this.view.list("policies/")).map((k) => k.slice("policies/".length));
  }

  async assignment(name: string): Promise<Assignment | undefined> {
    return dec<Assignment>(await this.view.get(`assignments/${name}`));
  }

  async putAssignment(a: Assignment): Promise<void> {
    await this.view.put(`assignments/${a.name}`, enc(a));
  }

  async deleteAssignment(name: string): Promise<boolean> {
    return this.view.delete(`assignments/${name}`);
  }

  async assignments(): Promise<Assignment[]> {
    const out: Assignment[] = [];
    for (const k of await this.view.list("assignments/")) {
      const a = dec<Assignment>(await this.view.get(k));
      if (a) out.push(a);
    }
    return out;
  }

  /**
   * The assignment that applies to `device`: one naming the device wins; otherwise exactly one whose labels
   * the device carries. Two label assignments matching one device are refused rather than guessed between.
   */
  async assignmentFor(device: Device): Promise<Assignment> {
    const all = await this.assignments();
    const byId = all.filter((a) => a.deviceId === device.id);
    if (byId.length > 1) {
      fail(
        "FR_ROS2_FLEET_DENIED",
        `device "${device.id}" has several assignments (${names(byId)}); keep one`,
      );
    }
    if (byId[0]) return byId[0];
    const byLabel = all.filter(
      (a) => a.labels && Object.entries(a.labels).every(([k, v]) => device.labels[k] === v),
    );
    if (byLabel.length > 1) {
      fail(
        "FR_ROS2_FLEET_DENIED",
        `device "${device.id}" matches several label assignments (${names(byLabel)}); assign it by id or make the labels exclusive`,
      );
    }
    return (
      byLabel[0] ??
      fail(
        "FR_ROS2_FLEET_DENIED",
        `no ROS 2 policy is assigned to device "${device.id}"; assign one (ros2/assignments) by id or label`,
      )
    );
  }
}

const names = (as: readonly Assignment[]) => as.map((a) => a.name).join(", ");
