import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** A self-signed P-256 TLS certificate for 127.0.0.1 and localhost, made by openssl; returns the file paths. */
export function serverTls(dir: string): { cert: string; key: string } {
  const cert = join(dir, "tls.pem");
  const key = join(dir, "tls.key");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  return { cert, key };
}
