export { createKeyManager, type KeyManager, type KeyManagerOptions, type ProvisionalKey } from "./manager.js";
export {
  checkTokenNamed,
  parseKeyUri,
  redactKeyUri,
  type ParsedKeyUri,
  type FileKeyUri,
  type Pkcs11KeyUri,
} from "./uri.js";
export {
  defaultPkcs11Modules,
  requestKeyPolicy,
  requestKeyUri,
  type RequestKeyPolicy,
} from "./request-uri.js";
export { verifySignature, publicKeyPem, schemesFor } from "./algorithms.js";
export { encryptedKeyLabel } from "./file-backend.js";
export {
  keyAlgorithms,
  wrapAlgorithms,
  type KeyAlgorithm,
  type SignatureScheme,
  type Signer,
  type KeyProtector,
  type KeyWrapper,
  type WrapAlgorithm,
} from "./types.js";
