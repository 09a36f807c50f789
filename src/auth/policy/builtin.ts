/**
 * The built-in policies. `root` grants everything and cannot be read back as rules, changed or deleted.
 * `default` is attached to every token unless asked not to; like Vault's it gives a token self-service
 * over itself and the response-wrapping endpoints. It can be read and rewritten, but not deleted.
 */
export const ROOT_POLICY = "root";
export const DEFAULT_POLICY = "default";

export const DEFAULT_POLICY_TEXT = `# Fleetroot's default policy: what every token may do with itself.

# Look up the calling token's own properties.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Renew the calling token.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Revoke the calling token.
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Ask which capabilities the calling token has on a path.
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Renew or look up a lease whose ID the caller already knows.
path "sys/renew" {
  capabilities = ["update"]
}
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# Response wrapping: wrap a value, look up and unwrap a wrapping token.
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}

# General-purpose hashing.
path "sys/tools/hash" {
  capabilities = ["update"]
}
path "sys/tools/hash/*" {
  capabilities = ["update"]
}
`;
