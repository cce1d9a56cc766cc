// wss and mutual TLS with certificates made for the test by openssl: a CA, server certificates, a client
// certificate it signed and a rogue one from another CA. Health paths need no client certificate; /ws does.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestContext,
  openRaw,
  registerDevice,
  spawnService,
  type TestContext,
  waitForLog,
} from '#test-support';
import { type EdgeWorld, listeningPort, loggedIn, startEdgeWorld } from './fixture';

let dir: string;
const file = (name: string) => join(dir, name);
const pem = (name: string) => readFileSync(file(name));

/** Runs one openssl command line (its words split on spaces; names here have none). */
function openssl(line: string): void {
  execFileSync('openssl', line.split(' '), { cwd: dir, stdio: 'pipe' });
}

const NEW_KEY = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';

function makeCa(name: string): void {
  openssl(`req -x509 ${NEW_KEY} -keyout ${name}.key -out ${name}.crt -days 2 -subj /CN=${name}`);
}

function makeSigned(name: string, ca: string, extensions?: string): void {
  openssl(`req -new ${NEW_KEY} -keyout ${name}.key -out ${name}.csr -subj /CN=${name}`);
  const signing = `-CA ${ca}.crt -CAkey ${ca}.key -CAcreateserial -days 2`;
  openssl(
    `x509 -req -in ${name}.csr ${signing} -out ${name}.crt${extensions ? ` -extfile ${extensions}` : ''}`,
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-tls-'));
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  makeCa('ca');
  makeCa('rogue-ca');
  makeSigned('server', 'ca', 'server.ext');
  makeSigned('server-next', 'ca', 'server.ext');
  makeSigned('client', 'ca');
  makeSigned('rogue-client', 'rogue-ca');
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** GET over https with the CA and, optionally, a client certificate; answers the status. */
function httpsStatus(port: number, path: string, client?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: pem('ca.crt'),
        ...(client ? { cert: pem(`${client}.crt`), key: pem(`${client}.key`) } : {}),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The SHA-256 fingerprint of the certificate the edge presents to a new handshake. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: pem('ca.crt') }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

const fingerprintOf = (name: string) => new X509Certificate(pem(`${name}.crt`)).fingerprint256;

describe('when the edge serves wss', () => {
  let world: EdgeWorld;
  beforeAll(async () => {
    copyFileSync(file('server.crt'), file('live.crt'));
    copyFileSync(file('server.key'), file('live.key'));
    world = await startEdgeWorld({ EDGE_TLS_CERT: file('live.crt'), EDGE_TLS_KEY: file('live.key') });
  });
  afterAll(() => world?.stop());

  it('logs a device in over TLS and answers health over https', async () => {
    const token = await registerDevice(world.ctx, 'tls', 'm1', 'main');
    const socket = await loggedIn(`wss://127.0.0.1:${world.edge.port}/ws`, token, {}, { ca: pem('ca.crt') });
    expect(await httpsStatus(world.edge.port, '/healthz')).toBe(200);
    socket.ws.close();
  });

  it('reloads its certificate for new handshakes and keeps open connections (SIGHUP)', async () => {
    const url = `wss://127.0.0.1:${world.edge.port}/ws`;
    const token = await registerDevice(world.ctx, 'tls', 'm2', 'main');
    const before = await loggedIn(url, token, {}, { ca: pem('ca.crt') });
    expect(await servedFingerprint(world.edge.port)).toBe(fingerprintOf('server'));

    copyFileSync(file('server-next.crt'), file('live.crt'));
    copyFileSync(file('server-next.key'), file('live.key'));
    world.edge.reloadTls();

    expect(await servedFingerprint(world.edge.port)).toBe(fingerprintOf('server-next'));
    before.send({ op: 'ping', req_id: 'still-open' });
    expect(await before.next()).toMatchObject({ op: 'pong', req_id: 'still-open' });
    const after = await openRaw(url, { ca: pem('ca.crt') });
    after.send({ op: 'ping' });
    expect(await after.next()).toMatchObject({ op: 'pong' });
    before.ws.close();
    after.ws.close();
  });
});

describe('when `broker start edge` gets SIGHUP', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(() => ctx?.cleanup());

  it('serves the new certificate to new handshakes and keeps its connections', async () => {
    copyFileSync(file('server.crt'), file('hup.crt'));
    copyFileSync(file('server.key'), file('hup.key'));
    const service = spawnService('edge', {
      ...ctx.env,
      EDGE_ID: `${ctx.config.edge.id}-hup`,
      LOG_LEVEL: 'info',
      EDGE_TLS_CERT: file('hup.crt'),
      EDGE_TLS_KEY: file('hup.key'),
    });
    try {
      const port = await listeningPort(service);
      const token = await registerDevice(ctx, 'hup', 'm1', 'main');
      const before = await loggedIn(`wss://127.0.0.1:${port}/ws`, token, {}, { ca: pem('ca.crt') });
      copyFileSync(file('server-next.crt'), file('hup.crt'));
      copyFileSync(file('server-next.key'), file('hup.key'));
      service.child.kill('SIGHUP');
      await waitForLog(service, 'tls certificates reloaded');
      expect(await servedFingerprint(port)).toBe(fingerprintOf('server-next'));
      before.send({ op: 'ping', req_id: 'still-open' });
      expect(await before.next()).toMatchObject({ op: 'pong', req_id: 'still-open' });
      expect(service.child.exitCode).toBeNull();
      before.ws.close();
    } finally {
      await service.kill('SIGKILL');
    }
  });
});

describe('when the certificate files are unusable', () => {
  it('refuses to start, naming the variable', async () => {
    await expect(
      startEdgeWorld({ EDGE_TLS_CERT: file('missing.crt'), EDGE_TLS_KEY: file('server.key') }),
    ).rejects.toThrow(/EDGE_TLS_CERT: expected a readable PEM file \(ENOENT\)/);
    await expect(
      startEdgeWorld({ EDGE_TLS_CERT: file('server.crt'), EDGE_TLS_KEY: file('client.key') }),
    ).rejects.toThrow(/EDGE_TLS_CERT: expected a PEM certificate matching EDGE_TLS_KEY/);
  });

  it('keeps serving the previous certificate when a reload finds a half-written file', async () => {
    copyFileSync(file('server.crt'), file('torn.crt'));
    copyFileSync(file('server.key'), file('torn.key'));
    const world = await startEdgeWorld({ EDGE_TLS_CERT: file('torn.crt'), EDGE_TLS_KEY: file('torn.key') });
    try {
      writeFileSync(file('torn.crt'), pem('server-next.crt').subarray(0, 100));
      expect(() => world.edge.reloadTls()).not.toThrow();
      expect(await servedFingerprint(world.edge.port)).toBe(fingerprintOf('server'));
    } finally {
      await world.stop();
    }
  });
});

describe('when EDGE_TLS_CA turns on mutual TLS', () => {
  let world: EdgeWorld;
  let url: string;
  beforeAll(async () => {
    world = await startEdgeWorld({
      EDGE_TLS_CERT: file('server.crt'),
      EDGE_TLS_KEY: file('server.key'),
      EDGE_TLS_CA: file('ca.crt'),
    });
    url = `wss://127.0.0.1:${world.edge.port}/ws`;
  });
  afterAll(() => world?.stop());

  const withCert = (name: string) => ({
    ca: pem('ca.crt'),
    cert: pem(`${name}.crt`),
    key: pem(`${name}.key`),
  });

  it('logs in a device presenting a certificate the CA signed', async () => {
    const token = await registerDevice(world.ctx, 'mtls', 'm1', 'main');
    const socket = await loggedIn(url, token, {}, withCert('client'));
    socket.ws.close();
  });

  it('refuses /ws without a client certificate, and answers health without one', async () => {
    await expect(openRaw(url, { ca: pem('ca.crt') })).rejects.toThrow(/401/);
    for (const path of ['/healthz', '/readyz', '/metrics'])
      expect(await httpsStatus(world.edge.port, path)).toBe(200);
  });

  it('refuses /ws with a certificate from another CA', async () => {
    await expect(openRaw(url, { ...withCert('rogue-client'), ca: pem('ca.crt') })).rejects.toThrow(/401/);
    expect(world.edge.connectionCount()).toBe(0);
  });
});
