import type { TestServer } from "./helpers/server.js";

/** Initializes a test server with one share and unseals it; returns the root token. */
export async function initAndUnseal(t: TestServer): Promise<{ root: string; key: string }> {
  const init = (await t.call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 })).json();
  const key = (init.keys as string[])[0]!;
  const st = (await t.call("PUT", "sys/unseal", { key })).json();
  if (st.sealed !== false) throw new Error(`unseal failed: ${JSON.stringify(st)}`);
  return { root: init.root_token as string, key };
}

/** Writes an ACL policy with the root token. */
export async function putPolicy(t: TestServer, root: string, name: string, hcl: string): Promise<void> {
  const r = await t.call("PUT", `sys/policies/acl/${name}`, { policy: hcl }, root);
  if (r.statusCode !== 204 && r.statusCode !== 200) throw new Error(`policy ${name}: ${r.body}`);
}

/** Creates a child token of `parent` with these policies; returns it. */
export async function childToken(t: TestServer, parent: string, policies: string[]): Promise<string> {
  const r = await t.call("POST", "auth/token/create", { policies }, parent);
  return (r.json().auth as { client_token: string }).client_token;
}
