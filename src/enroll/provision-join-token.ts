import { randomUUID } from "node:crypto";
import { checkDeviceId } from "../devices/index.js";
import { fail } from "../errors/index.js";
import type { Authorize } from "./authorize-types.js";
import { deviceNames } from "./sign-options.js";

/**
 * join-token: a single-use, short-lived secret. A token bound to a device id enrolls that device; an
 * unbound one enrolls a new device (the id the agent asks for, if it is free, or a random one).
 */
export const authorizeJoinToken: Authorize<"join-token"> = async (deps, cfg, req) => {
  const token = req.body.token;
  if (typeof token !== "string" || token.length === 0)
    fail("FR_VALIDATION", "token is required for a join-token provisioner");
  const row = await deps.tokens.redeem(token, cfg.name);
  const undo = () => deps.tokens.release(row.hash);
  try {
    let deviceId = row.deviceId;
    let newDevice = false;
    const asked = req.body.device_id;
    if (deviceId && asked !== undefined && asked !== deviceId) {
      // A bound token enrolls its device only; the token is given back by undo() below.
      fail(
        "FR_ENROLL_DENIED",
        `this join token is bound to device "${deviceId}", not ${JSON.stringify(asked).slice(0, 80)}; ` +
          `send no device_id, or use a token created for that device`,
      );
    }
    if (!deviceId) {
      deviceId = asked === undefined ? randomUUID() : checkDeviceId(asked);
      if (await deps.registry.find(deviceId)) {
        fail(
          "FR_ENROLL_DENIED",
          `device "${deviceId}" already exists; an unbound join token only enrolls new devices`,
        );
      }
      newDevice = true;
    } else if (!(await deps.registry.find(deviceId))) {
      newDevice = true;
    }
    return {
      options: {
        method: "join-token",
        role: cfg.role,
        deviceId,
        ttlSeconds: cfg.ttl,
        dnsSans: [],
        provisioner: cfg.name,
        tokenAccessor: row.accessor,
        ...deviceNames(deviceId),
      },
      newDevice: newDevice ? { id: deviceId, status: "pending" } : undefined,
      undo,
      audit: { token_accessor: row.accessor },
    };
  } catch (e) {
    await undo();
    throw e;
  }
};
