/**
 * The error catalog: every stable code Fleetroot can return, its HTTP status and its public message.
 * docs/errors.md is generated from this table (`node scripts/gen-errors-doc.mjs`) and a test keeps the two in step.
 * Add a code here, never inline a status elsewhere.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export const codes = {
  // generic request errors
  FR_BAD_REQUEST: { status: 400, message: "the request is malformed" },
  FR_INVALID_JSON: { status: 400, message: "the request body is not valid JSON" },
  FR_VALIDATION: { status: 400, message: "a request field is missing or invalid" },
  FR_BODY_TOO_LARGE: { status: 413, message: "the request body exceeds the size limit" },
  FR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "the request content type is not supported" },
  FR_NOT_FOUND: { status: 404, message: "no such path or object" },
  FR_METHOD_NOT_ALLOWED: { status: 405, message: "the method is not allowed on this path" },
  FR_RATE_LIMITED: { status: 429, message: "too many requests; slow down and retry later" },
  FR_INTERNAL: { status: 500, message: "internal error; see the server log" },
  FR_CONFLICT: { status: 400, message: "the request conflicts with the current state" },

  // configuration
  FR_CONFIG_INVALID: { status: 500, message: "the configuration is invalid" },
  FR_CONFIG_UNREADABLE: { status: 500, message: "the configuration file cannot be read" },

  // storage
  FR_STORE_UNAVAILABLE: { status: 503, message: "the storage backend is unreachable" },
  FR_STORE_URL: { status: 500, message: "the storage URL is not usable" },
  FR_STORE_MIGRATION: { status: 500, message: "a storage migration failed" },

  // keys
  FR_KEY_URI: { status: 400, message: "the key URI is malformed, unsupported or not allowed here" },
  FR_KEY_NOT_FOUND: { status: 404, message: "the key does not exist" },
  FR_KEY_EXISTS: { status: 400, message: "a key already exists at that URI" },
  FR_KEY_ALGORITHM: { status: 400, message: "the key algorithm is not supported" },
  FR_KEY_PIN: { status: 403, message: "the PKCS#11 PIN was rejected" },
  FR_KEY_TOKEN: { status: 404, message: "the PKCS#11 token or module was not found" },
  FR_KEY_MECHANISM: { status: 400, message: "the PKCS#11 token does not support the mechanism" },
  FR_KEY_BACKEND: { status: 500, message: "the key backend failed" },
  FR_KEY_FORMAT: { status: 400, message: "the key material is malformed" },

  // seal and barrier
  FR_SEALED: { status: 503, message: "Vault is sealed" },
  FR_NOT_INITIALIZED: { status: 400, message: "the server is not initialized" },
  FR_ALREADY_INITIALIZED: { status: 400, message: "Vault is already initialized" },
  FR_UNSEAL_SHARE_INVALID: { status: 400, message: "the unseal key share is invalid" },
  FR_UNSEAL_SHARE_REUSED: { status: 400, message: "this unseal key share was already provided" },
  FR_UNSEAL_FAILED: { status: 400, message: "the unseal key shares do not reconstruct the root key" },
  FR_BARRIER_DECRYPT: { status: 500, message: "a stored value failed authentication under the barrier" },
  FR_SEAL_CONFIG: { status: 500, message: "the seal configuration is invalid" },
  FR_SEAL_MISMATCH: { status: 500, message: "the stored seal type does not match the configured seal" },

  // auth
  FR_PERMISSION_DENIED: { status: 403, message: "permission denied" },
  FR_MISSING_TOKEN: { status: 403, message: "permission denied" },
  FR_TOKEN_INVALID: { status: 403, message: "permission denied" },
  FR_TOKEN_NOT_RENEWABLE: { status: 400, message: "the token is not renewable" },
  FR_POLICY_SYNTAX: { status: 400, message: "the policy cannot be parsed" },
  FR_POLICY_NOT_FOUND: { status: 404, message: "no such policy" },
  FR_POLICY_PROTECTED: { status: 400, message: "the policy cannot be changed or deleted" },
  FR_LOGIN_FAILED: { status: 400, message: "login failed" },
  FR_ACCESSOR_INVALID: { status: 400, message: "invalid accessor" },
  FR_TOKEN_PRIVILEGE: { status: 400, message: "root or sudo privileges are required for this token option" },

  // audit
  FR_AUDIT_FAILED: { status: 500, message: "the request could not be audited and was refused" },
  FR_AUDIT_TAMPERED: { status: 500, message: "the audit log fails verification" },
  FR_AUDIT_FILE: { status: 500, message: "the audit log file cannot be opened or read" },

  // X.509 encoding (src/crypto)
  FR_PEM_INVALID: { status: 400, message: "the PEM text is malformed" },
  FR_DER_INVALID: { status: 400, message: "the DER data is malformed" },
  FR_CERT_TEMPLATE: { status: 400, message: "the certificate template is invalid" },
  FR_CSR_INVALID: { status: 400, message: "the certificate signing request is malformed" },
  FR_CSR_SIGNATURE: { status: 400, message: "the certificate signing request's signature does not verify" },
  FR_CSR_ALGORITHM: { status: 400, message: "the CSR's key or signature algorithm is not supported" },
  FR_OCSP_REQUEST_INVALID: { status: 400, message: "the OCSP request is malformed" },

  // PKI (src/pki)
  FR_PKI_ROLE_NOT_FOUND: { status: 404, message: "no such PKI role" },
  FR_PKI_ROLE_INVALID: { status: 400, message: "the PKI role definition is invalid" },
  FR_PKI_ROLE_DENIED: { status: 400, message: "the request asks for something the role does not allow" },
  FR_PKI_ISSUER_NOT_FOUND: { status: 404, message: "no such issuer" },
  FR_PKI_NO_ISSUER: { status: 400, message: "no usable issuer: create a root or set a signed intermediate" },
  FR_PKI_ISSUER_INVALID: { status: 400, message: "the issuer certificate does not fit" },
  FR_PKI_CERT_NOT_FOUND: { status: 404, message: "no certificate with that serial number" },

  // signed updates (src/updates, src/agent)
  FR_UPDATES_REPO_NOT_FOUND: { status: 404, message: "no such update repository" },
  FR_UPDATES_REPO_EXISTS: { status: 400, message: "an update repository with that name already exists" },
  FR_UPDATES_ROLE: { status: 400, message: "the TUF role is unknown or its definition is invalid" },
  FR_UPDATES_TARGET: { status: 400, message: "the target path or content is invalid" },
  FR_UPDATES_METADATA: { status: 400, message: "the TUF metadata is malformed" },
  FR_UPDATES_SIGNATURE: {
    status: 400,
    message: "the metadata is not signed by a threshold of the role's keys",
  },
  FR_UPDATES_KEY: { status: 400, message: "the key cannot be used for TUF or in-toto" },
  FR_UPDATES_VERIFY: { status: 400, message: "the update failed verification and was not applied" },
  FR_UPDATES_INTOTO: { status: 400, message: "the in-toto layout or links fail verification" },
  // secrets (KV, mounts, response wrapping)
  FR_KV_CAS_MISMATCH: { status: 400, message: "check-and-set parameter did not match the current version" },
  FR_KV_CAS_REQUIRED: { status: 400, message: "check-and-set parameter required for this call" },
  FR_MOUNT_CONFLICT: { status: 400, message: "the mount path is already in use" },
  FR_WRAPPING_TOKEN_INVALID: { status: 400, message: "wrapping token is not valid or does not exist" },
  // ROS 2 / DDS Security (src/ros2)
  FR_ROS2_POLICY_INVALID: {
    status: 400,
    message: "the ROS 2 security policy is malformed or does not match the schema",
  },
  FR_ROS2_XML_UNSAFE: {
    status: 400,
    message: "the XML contains a DTD or entity declaration, which is refused",
  },
  FR_ROS2_KEYSTORE: { status: 400, message: "the ROS 2 keystore is missing, incomplete or not a keystore" },
  FR_ROS2_ENCLAVE_NAME: { status: 400, message: "the enclave name is not a valid fully qualified ROS name" },
  FR_ROS2_ENCLAVE_NOT_FOUND: { status: 404, message: "no such enclave in the keystore" },
  FR_ROS2_ENCLAVE_EXISTS: { status: 400, message: "the enclave already exists in the keystore" },
  FR_ROS2_SIGNATURE: { status: 400, message: "an S/MIME signed DDS document fails verification" },
  FR_ROS2_CRL: {
    status: 502,
    message: "the server's ROS 2 CRL is not one this keystore's DDS plugins would accept",
  },
  FR_ROS2_FLEET_NOT_CONFIGURED: {
    status: 400,
    message: "the fleet's ROS 2 CAs are not configured (POST ros2/config first)",
  },
  FR_ROS2_FLEET_DENIED: { status: 403, message: "the device may not obtain this ROS 2 enclave" },
  // devices and enrollment (src/devices, src/enroll, src/agent)
  FR_DEVICE_NOT_FOUND: { status: 404, message: "no such device" },
  FR_DEVICE_STATE: { status: 400, message: "the device's status does not allow this operation" },
  FR_PROVISIONER_NOT_FOUND: { status: 404, message: "no such provisioner" },
  FR_PROVISIONER_INVALID: { status: 400, message: "the provisioner definition is invalid" },
  FR_MANUFACTURER_NOT_FOUND: { status: 404, message: "no such manufacturer" },
  FR_ENROLL_MALFORMED: { status: 400, message: "the enrollment proof is malformed" },
  FR_ENROLL_NONCE: { status: 400, message: "the enrollment nonce is unknown, expired or already used" },
  FR_ENROLL_TOKEN: { status: 403, message: "the join token is unknown, expired or already used" },
  FR_ENROLL_DENIED: { status: 403, message: "enrollment refused: the proof does not check out" },
  FR_ENROLL_CHAIN: { status: 403, message: "the device certificate chain fails validation" },
  FR_ENROLL_ATTESTATION: { status: 403, message: "the attestation token fails verification" },
  FR_RENEW_DENIED: { status: 403, message: "renewal refused" },
  FR_AGENT_STATE: { status: 400, message: "the agent's output directory is missing or inconsistent" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof codes;
