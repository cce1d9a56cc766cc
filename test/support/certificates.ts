// Certificates made by openssl for a test, the way the original system's write-up made its chain's (genrsa, a
// request, a self-signed CA, certificates it signs; subjects as the write-up filled them in). One directory per
// call, removed by cleanup().
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  /**
   * A device certificate made by the write-up's own steps (its new_client.sh): a 1,024-bit key under des3, signed
   * by `openssl ca` with the write-up's openssl.conf (`default_md = md5`), exported to client.p12 and taken out
   * again as cer.pem and key.pem, which the device presents (`<name>.crt`, `<name>.key`, the key under a pass
   * phrase). `expired` makes one whose dates have passed.
   */
  makeDeviceAsTheWriteUp(name: string, ca: string, options?: { expired?: boolean }): void;
  /** TLS options of a client presenting `<name>.crt` (none when null) and trusting `trust`. */
  clientOptions(name: string | null, trust: string): ClientTlsOptions;
  cleanup(): void;
}

export interface ClientTlsOptions {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  /** The write-up's devices: an MD5-signed certificate and a 1,024-bit key, which OpenSSL 3 loads at level 0 only. */
  ciphers?: string;
}

/** The write-up's openssl.conf, for one CA of this directory (its database and serial beside it). */
function writeUpConf(dir: string, ca: string): string {
  return `[ ca ]
default_ca      = foo
[ foo ]
dir            = ${dir}
database       = ${dir}/${ca}.index.txt
new_certs_dir  = ${dir}/${ca}.newcerts
certificate    = ${dir}/${ca}.crt
serial         = ${dir}/${ca}.serial
private_key    = ${dir}/${ca}.key
default_days   = 365
default_crl_days= 30
default_md     = md5
unique_subject = no
policy         = policy_any
[ policy_any ]
countryName = match
stateOrProvinceName = match
organizationName = match
organizationalUnitName = match
localityName            = optional
commonName              = optional
emailAddress            = optional
`;
}

const WRITE_UP_PASS = 'weiwoju';

export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'broker-certs-'));
  const file = (name: string) => join(dir, name);
  const pem = (name: string) => readFileSync(file(name));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const writeUpDevices = new Set<string>();
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
    makeDeviceAsTheWriteUp(name, ca, options = {}) {
      if (!existsSync(file(`${ca}.conf`))) {
        writeFileSync(file(`${ca}.conf`), writeUpConf(dir, ca));
        writeFileSync(file(`${ca}.serial`), 'FACE\n');
        writeFileSync(file(`${ca}.index.txt`), '');
        mkdirSync(file(`${ca}.newcerts`));
      }
      const pass = `pass:${WRITE_UP_PASS}`;
      openssl('genrsa', '-des3', '-passout', pass, '-out', `${name}.des3.key`, '1024');
      openssl(
        'req',
        '-new',
        '-key',
        `${name}.des3.key`,
        '-passin',
        pass,
        '-out',
        `${name}.csr`,
        '-subj',
        `${SUBJECT}/CN=${name}`,
      );
      const dates = options.expired ? ['-startdate', '20200101000000Z', '-enddate', '20210101000000Z'] : [];
      openssl(
        'ca',
        '-batch',
        '-config',
        `${ca}.conf`,
        ...dates,
        '-in',
        `${name}.csr`,
        '-out',
        `${name}.ca.crt`,
      );
      openssl(
        'pkcs12',
        '-export',
        '-in',
        `${name}.ca.crt`,
        '-inkey',
        `${name}.des3.key`,
        '-passin',
        pass,
        '-passout',
        pass,
        '-out',
        `${name}.p12`,
      );
      openssl('pkcs12', '-clcerts', '-nokeys', '-in', `${name}.p12`, '-passin', pass, '-out', `${name}.crt`);
      openssl(
        'pkcs12',
        '-nocerts',
        '-in',
        `${name}.p12`,
        '-passin',
        pass,
        '-passout',
        pass,
        '-out',
        `${name}.key`,
      );
      writeUpDevices.add(name);
    },
    clientOptions(name, trust) {
      return {
        ca: pem(`${trust}.crt`),
        ...(name ? { cert: pem(`${name}.crt`), key: pem(`${name}.key`) } : {}),
        ...(name && writeUpDevices.has(name)
          ? { passphrase: WRITE_UP_PASS, ciphers: 'DEFAULT:@SECLEVEL=0' }
          : {}),
      };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
