// Certificates made by openssl for a test, the way the original system's write-up made its chain's (genrsa, a
// request, a self-signed CA, certificates it signs; subjects as the write-up filled them in). One directory per
// call, removed by cleanup().
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SUBJECT = '/C=CN/ST=Zhejiang/L=Hangzhou/O=weiwoju/OU=ws';

export interface Certificates {
  dir: string;
  /** The path of a file made here: `ca.crt`, `client.key`, … */
  file(name: string): string;
  pem(name: string): Buffer;
  /** A self-signed CA: `<name>.crt`, `<name>.key`. */
  makeCa(name: string): void;
  /** A certificate `ca` signs: `<name>.crt`, `<name>.key`; a server one names 127.0.0.1 and localhost. */
  makeSigned(name: string, ca: string, options?: { isServer?: boolean }): void;
  /** TLS options of a client presenting `<name>.crt` (none when null) and trusting `trust`. */
  clientOptions(name: string | null, trust: string): { ca: Buffer; cert?: Buffer; key?: Buffer };
  cleanup(): void;
}

export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'broker-certs-'));
  const file = (name: string) => join(dir, name);
  const pem = (name: string) => readFileSync(file(name));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  /** A key, its request, and the certificate x509 makes of them with `signing` (self-signed, or by a CA). */
  const signed = (name: string, signing: string[]) => {
    openssl('genrsa', '-out', `${name}.key`, '2048');
    openssl('req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `${SUBJECT}/CN=${name}`);
    openssl('x509', '-req', '-days', '2', '-in', `${name}.csr`, ...signing, '-out', `${name}.crt`);
  };
  return {
    dir,
    file,
    pem,
    makeCa(name) {
      signed(name, ['-signkey', `${name}.key`]);
    },
    makeSigned(name, ca, options = {}) {
      signed(name, [
        '-CA',
        `${ca}.crt`,
        '-CAkey',
        `${ca}.key`,
        '-CAcreateserial',
        ...(options.isServer ? ['-extfile', 'server.ext'] : []),
      ]);
    },
    clientOptions(name, trust) {
      return {
        ca: pem(`${trust}.crt`),
        ...(name ? { cert: pem(`${name}.crt`), key: pem(`${name}.key`) } : {}),
      };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
