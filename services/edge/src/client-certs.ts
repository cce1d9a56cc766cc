// Which CA signed a client certificate. The edge's TLS handshake trusts every client CA it is given (EDGE_TLS_CA
// for /ws, EDGE_LEGACY_CA for the original protocol's path); a path then accepts only a certificate whose verified
// chain reaches its own CA, so a device certificate of the original chain opens the legacy path and nothing else.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { ConfigError } from '#runtime';

/** The certificates of one CA file (a file may hold a bundle), and their fingerprints. */
export interface ClientCas {
  pems: string[];
  fingerprints: ReadonlySet<string>;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads a CA file; a ConfigError names the variable when it is unreadable or holds no certificate. */
export function readCas(variable: string, path: string): ClientCas {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(variable, `a readable PEM file (${(err as NodeJS.ErrnoException).code})`, path);
  }
  const pems = text.match(PEM_CERTIFICATE) ?? [];
  const fingerprints = new Set<string>();
  for (const pem of pems) {
    try {
      fingerprints.add(new X509Certificate(pem).fingerprint256);
    } catch (err) {
      throw new ConfigError(variable, `PEM CA certificates (${(err as Error).message})`, path);
    }
  }
  if (pems.length === 0) throw new ConfigError(variable, 'a file of PEM CA certificates', path);
  return { pems, fingerprints };
}

/**
 * True when the peer presented a certificate that the handshake verified and whose chain reaches one of `cas`.
 * Node completes the peer's chain with its issuers from the trust store up to the root (getPeerCertificate(true)),
 * so the CA itself is in the chain even when the device sent its own certificate alone.
 */
export function isSignedBy(socket: TLSSocket, cas: ClientCas | null): boolean {
  if (cas === null || typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return false;
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cert?.fingerprint256 && !seen.has(cert.fingerprint256)) {
    if (cas.fingerprints.has(cert.fingerprint256)) return true;
    seen.add(cert.fingerprint256);
    cert = cert.issuerCertificate;
  }
  return false;
}
