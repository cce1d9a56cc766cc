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
  certificates: X509Certificate[];
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
  const certificates: X509Certificate[] = [];
  for (const pem of pems) {
    try {
      certificates.push(new X509Certificate(pem));
    } catch (err) {
      throw new ConfigError(variable, `PEM CA certificates (${(err as Error).message})`, path);
    }
  }
  if (pems.length === 0) throw new ConfigError(variable, 'a file of PEM CA certificates', path);
  return { pems, certificates, fingerprints: new Set(certificates.map((c) => c.fingerprint256)) };
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

/**
 * The original chain's device certificates are signed with MD5 (its openssl.conf's `default_md`), which OpenSSL 3
 * refuses at every security level Node runs at: the handshake still completes (the edge asks for a certificate
 * without requiring one) and says only UNSPECIFIED. With EDGE_LEGACY_ALLOW_MD5 the edge checks such a certificate
 * itself, as the write-up's chain is made: issued directly by one of `cas` (no intermediates), its signature
 * verified with that CA's key, the certificate and the CA within their dates. Any digest passes this check; what
 * it does not do (revocation lists, name or usage constraints) the original server did not do either.
 */
export function isIssuedDirectlyBy(socket: TLSSocket, cas: ClientCas | null): boolean {
  if (cas === null || typeof socket.getPeerCertificate !== 'function') return false;
  const raw = socket.getPeerCertificate(false)?.raw;
  if (!raw) return false;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(raw);
  } catch {
    return false;
  }
  const now = Date.now();
  const current = (c: X509Certificate) => Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
  return (
    current(cert) &&
    cas.certificates.some((ca) => current(ca) && cert.checkIssued(ca) && cert.verify(ca.publicKey))
  );
}
