/**
 * sros2's default policy (everything allowed for one node profile): what a new enclave gets until
 * `permissions create` gives it a real policy.
 */
import type { Policy } from "./policy.js";

export function defaultPolicyFor(enclavePath: string): Policy {
  return {
    enclaves: [
      {
        path: enclavePath,
        profileGroups: [
          [
            {
              ns: "/",
              node: "default",
              rules: [
                { kind: "topics", qualifiers: { publish: "ALLOW", subscribe: "ALLOW" }, names: ["/*"] },
                { kind: "services", qualifiers: { reply: "ALLOW", request: "ALLOW" }, names: ["/*"] },
                { kind: "actions", qualifiers: { call: "ALLOW", execute: "ALLOW" }, names: ["/*"] },
              ],
            },
          ],
        ],
      },
    ],
  };
}
