// The deployment files against the code: every compose service runs a real `broker` command with variables
// loadConfig knows and accepts in production, the edges HAProxy balances are the edges compose runs, and the
// Dockerfile ships what the entry point imports. `haproxy -c` checks the balancer's file when haproxy is installed.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, type Env, loadConfig, VARIABLES } from '#runtime';
import { registerMigrate } from '../../cli/src/commands/migrate';
import { registerStart } from '../../cli/src/commands/start';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number>;
  healthcheck?: { test?: string[] };
  depends_on?: Record<string, { condition: string }> | string[];
  ports?: string[];
  volumes?: string[];
  stop_grace_period?: string;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const services = Object.entries(compose.services);
const brokerServices = services.filter(([, service]) => service.build !== undefined);
const haproxyCfg = read('deploy/haproxy.cfg');
const dockerfile = read('Dockerfile');

/** What `broker` accepts, asked of the CLI's own command definitions. */
function brokerCommands(): string[][] {
  const program = new Command();
  registerStart(program);
  registerMigrate(program);
  const start = program.commands.find((command) => command.name() === 'start');
  const choices = start?.registeredArguments[0]?.description.split('|').map((s) => s.trim()) ?? [];
  return [...choices.map((service) => ['start', service]), ['migrate']];
}

/** Compose's interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `$$`. */
function interpolate(value: string, env: Env): string {
  return value.replace(/\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}/g, (match, name, colon, op, arg) => {
    if (match === '$$') return '$';
    const raw = env[name as string];
    const isMissing = raw === undefined || (colon === ':' && raw === '');
    if (op === '?' && isMissing) throw new Error(`required variable ${name} is missing a value: ${arg}`);
    if (op === '-' && isMissing) return arg as string;
    return raw ?? '';
  });
}

function environmentOf(service: ComposeService, env: Env): Env {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([key, value]) => [key, interpolate(String(value), env)]),
  );
}

const SECRETS: Env = {
  API_KEYS: 'key-one,key-two',
  DEVICE_TOKEN_SECRET: 'a-deployment-secret-of-at-least-32-chars',
};

describe('docker-compose.yml', () => {
  it('runs Redis 7 with the AOF fsynced every second', () => {
    const redis = compose.services.redis;
    expect(redis?.image).toMatch(/^redis:7/);
    const command = (redis?.command ?? []).join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--appendfsync everysec/);
    expect(redis?.healthcheck?.test).toBeDefined();
  });

  it('runs PostgreSQL 16', () => {
    expect(compose.services.postgres?.image).toMatch(/^postgres:16/);
    expect(compose.services.postgres?.healthcheck?.test).toBeDefined();
  });

  it('runs every broker service, two edges among them', () => {
    const commands = brokerServices.map(([, service]) => (service.command ?? []).join(' '));
    for (const expected of ['migrate', 'start persister', 'start dispatcher', 'start api']) {
      expect(commands).toContain(expected);
    }
    expect(commands.filter((command) => command === 'start edge')).toHaveLength(2);
  });

  it('gives each broker service a real broker command', () => {
    const known = brokerCommands().map((command) => command.join(' '));
    expect(known).toEqual(expect.arrayContaining(['start edge', 'start all', 'migrate']));
    for (const [name, service] of brokerServices) {
      expect(known, `${name}: ${service.command?.join(' ')}`).toContain(service.command?.join(' '));
    }
  });

  it('sets only variables loadConfig declares', () => {
    const declared = new Set(VARIABLES.map((variable) => variable.name));
    for (const [name, service] of brokerServices) {
      for (const key of Object.keys(service.environment ?? {})) {
        expect(declared.has(key), `${name} sets ${key}, which VARIABLES does not declare`).toBe(true);
      }
    }
  });

  it('runs in production, with the secrets taken from the environment and no default of its own', () => {
    for (const [name, service] of brokerServices) {
      const environment = service.environment ?? {};
      expect(environment.NODE_ENV, name).toBe('production');
      for (const secret of ['API_KEYS', 'DEVICE_TOKEN_SECRET']) {
        expect(String(environment[secret]), `${name} ${secret}`).toMatch(
          new RegExp(`^\\$\\{${secret}(:?[-?][^}]*)?\\}$`),
        );
        expect(interpolate(String(environment[secret]), {}), `${name} has a built-in ${secret}`).toBe('');
      }
    }
  });

  it('gives every broker service a configuration loadConfig accepts, once the secrets are set', () => {
    for (const [name, service] of brokerServices) {
      const { config, warnings } = loadConfig(environmentOf(service, SECRETS));
      expect(config.nodeEnv, name).toBe('production');
      expect(config.api.keys, name).toEqual(['key-one', 'key-two']);
      expect(warnings, name).toEqual([]);
    }
  });

  it('stops every broker service with a ConfigError naming the secret when it is missing', () => {
    for (const [name, service] of brokerServices) {
      expect(() => loadConfig(environmentOf(service, {})), name).toThrow(ConfigError);
      expect(() => loadConfig(environmentOf(service, {})), name).toThrow(/^API_KEYS: /);
      expect(() => loadConfig(environmentOf(service, { API_KEYS: 'k' })), name).toThrow(
        /^DEVICE_TOKEN_SECRET: /,
      );
    }
  });

  it('starts Redis and PostgreSQL alone without any secret (docker compose up -d redis postgres)', () => {
    for (const name of ['redis', 'postgres']) {
      const service = compose.services[name]!;
      expect(() => environmentOf(service, {})).not.toThrow();
      expect(JSON.stringify(service)).not.toMatch(/API_KEYS|DEVICE_TOKEN_SECRET/);
    }
  });

  it('gives each edge its own stable EDGE_ID', () => {
    const edges = brokerServices.filter(([, service]) => service.command?.join(' ') === 'start edge');
    expect(edges.map(([name, service]) => [name, service.environment?.EDGE_ID])).toEqual([
      ['edge-1', 'edge-1'],
      ['edge-2', 'edge-2'],
    ]);
  });

  it('health-checks each broker service on the port it listens on, and only once it is migrated', () => {
    for (const [name, service] of brokerServices) {
      if (service.command?.[0] === 'migrate') continue;
      const { config } = loadConfig(environmentOf(service, SECRETS));
      const port =
        { edge: config.edge.port, api: config.api.port }[service.command?.[1] ?? ''] ?? config.healthPort;
      expect(service.healthcheck?.test?.join(' '), name).toContain(`http://127.0.0.1:${port}/readyz`);
      expect(service.depends_on, name).toMatchObject({
        redis: { condition: 'service_healthy' },
        postgres: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
    }
  });

  it('gives services longer than the drain window to stop before Docker kills them', () => {
    for (const [name, service] of brokerServices) {
      if (service.command?.[0] === 'migrate') continue;
      const { config } = loadConfig(environmentOf(service, SECRETS));
      const graceMs = Number.parseInt(service.stop_grace_period ?? '10', 10) * 1000;
      expect(graceMs, name).toBeGreaterThan(config.edge.drainMs);
    }
  });
});

describe('deploy/haproxy.cfg', () => {
  it('balances TCP, so ws and wss pass through to the edges', () => {
    expect(haproxyCfg).toMatch(/^\s*mode tcp$/m);
    expect(haproxyCfg).not.toMatch(/^\s*mode http$[\s\S]*^backend edges/m);
  });

  it("checks each edge's /readyz with an HTTP check on the WebSocket port", () => {
    expect(haproxyCfg).toMatch(/^\s*option httpchk$/m);
    expect(haproxyCfg).toMatch(/^\s*http-check send meth GET uri \/readyz\b/m);
    expect(haproxyCfg).toMatch(/^\s*http-check expect status 200$/m);
    expect(haproxyCfg).toMatch(/^\s*default-server check\b/m);
  });

  it('balances exactly the edges compose runs, on their EDGE_PORT', () => {
    const servers = [...haproxyCfg.matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)].map((m) => [m[1], m[2], m[3]]);
    const edges = brokerServices
      .filter(([, service]) => service.command?.join(' ') === 'start edge')
      .map(([name, service]) => [name, name, String(service.environment?.EDGE_PORT)]);
    expect(servers).toEqual(edges);
  });

  it('is the file the haproxy service mounts, and its frontend is published', () => {
    const haproxy = compose.services.haproxy;
    expect(haproxy?.volumes).toContain('./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
    const bind = /^frontend devices[\s\S]*?^\s*bind :(\d+)$/m.exec(haproxyCfg)?.[1];
    expect(haproxy?.ports).toContain(`${bind}:${bind}`);
  });

  const haproxy = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  it('is valid for haproxy -c', (ctx) => {
    if (haproxy.error) ctx.skip('haproxy is not installed (apt-get install -y haproxy) — config not checked');
    const path = new URL('../../deploy/haproxy.cfg', import.meta.url).pathname;
    const check = spawnSync('haproxy', ['-c', '-f', path], { encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toMatch(/Configuration file is valid/);
    expect(check.status).toBe(0);
  });
});

describe('Dockerfile', () => {
  const stages = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
  const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));

  it('builds in stages on node:20-slim', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage).toMatch(/^node:20(\.\d+)*-slim$/);
  });

  it('installs only production dependencies (esbuild, which compiles the sources, is one) and builds the bundle', () => {
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies)).toContain('esbuild');
    // Built before the unprivileged user takes over: it could not write dist/ at run time.
    expect(dockerfile.indexOf('RUN node bin/build.mjs')).toBeGreaterThan(dockerfile.indexOf('COPY services'));
    expect(dockerfile.indexOf('RUN node bin/build.mjs')).toBeLessThan(dockerfile.indexOf('USER node'));
  });

  it('starts the broker command', () => {
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/broker\.mjs"\]$/m);
  });

  it('copies every folder the entry point imports from', () => {
    const pkg = JSON.parse(read('package.json')) as { imports: Record<string, string> };
    const needed = new Set(['bin', 'cli', 'db', 'package.json', 'package-lock.json', 'tsconfig.json']);
    for (const [alias, target] of Object.entries(pkg.imports)) {
      if (alias === '#test-support') continue;
      needed.add(target.replace(/^\.\//, '').split('/')[0]!);
    }
    const shipped = new Set(copied.map((source) => source.replace(/\/$/, '')));
    for (const path of needed) {
      const isCovered = shipped.has(path) || (path.startsWith('package') && shipped.has('package*.json'));
      expect(isCovered, `Dockerfile does not copy ${path}`).toBe(true);
    }
  });

  it('keeps what it copies out of .dockerignore', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim().replace(/\/$/, ''))
      .filter((line) => line && !line.startsWith('#'));
    expect(ignored).toContain('node_modules');
    for (const source of copied) expect(ignored, source).not.toContain(source.replace(/\/$/, ''));
  });
});
