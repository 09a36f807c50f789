import { X509Certificate } from "node:crypto";
import { fleetModule } from "../enroll/index.js";
import { normalizeSerial, pkiModule } from "../pki/index.js";
import { ros2FleetModule } from "../ros2/server/index.js";
import { secretsModule } from "../secrets/index.js";
import { updatesModule } from "../updates/index.js";
import type { FeatureModule } from "./main.js";

/**
 * The feature modules the server runs, in order. Each feature (pki, devices, ros2, secrets, updates)
 * exports one FeatureModule from its index.ts and adds a line here. The fleet module and certificate
 * login share the PKI instance, so a revocation reaches them at once.
 */
export function defaultModules(): FeatureModule[] {
  const pki = pkiModule();
  const ros2 = ros2FleetModule(() => pki.services);
  return [
    pki,
    // Decommissioning a device revokes its ROS 2 enclave certificates too.
    fleetModule(() => pki.services, undefined, { onDecommission: (id) => ros2.revokeDevice(id) }),
    ros2,
    updatesModule(),
    secretsModule({
      // Certificate login refuses a certificate this server issued and revoked; unknown ones fall back
      // to the CRLs configured on the cert role.
      revocation: async (certDer) => {
        const services = pki.services;
        if (!services) return undefined;
        const row = await services.certs.get(normalizeSerial(new X509Certificate(certDer).serialNumber));
        return row ? row.revoked_at !== null && row.revoked_at !== undefined : undefined;
      },
    }),
  ];
}
