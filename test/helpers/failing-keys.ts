import { FleetError } from "../../src/errors/index.js";
import type { KeyManager, Signer } from "../../src/keys/index.js";

/**
 * `keys` with the keys whose URI contains `marker` opening and generating as usual but failing to sign with
 * FR_KEY_BACKEND, as when a token is pulled out between the two. `failing` (default: always) decides at
 * each signature; `before` is awaited first, to hold a signature back. Everything else is `keys`' own.
 */
export function keysThatFailToSign(
  keys: KeyManager,
  marker: string,
  opts: { failing?: () => boolean; before?: () => Promise<void> } = {},
): KeyManager {
  const wrap = (s: Signer): Signer =>
    s.uri.includes(marker)
      ? {
          ...s,
          sign: async (data, scheme) => {
            await opts.before?.();
            if (opts.failing?.() ?? true) throw new FleetError("FR_KEY_BACKEND", "the token is gone");
            return s.sign(data, scheme);
          },
        }
      : s;
  return {
    ...keys,
    open: async (uri) => wrap(await keys.open(uri)),
    generate: async (uri, alg) => wrap(await keys.generate(uri, alg)),
  };
}
