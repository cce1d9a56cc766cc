// loadConfig: the documented defaults, a readable ConfigError naming the variable and the expected form for every
// bad value, secrets required in production, and a frozen result.
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, type Env, loadConfig, VARIABLES } from '#runtime';

const PRODUCTION: Env = {
  NODE_ENV: 'production',
  API_KEYS: 'k1',
  DEVICE_TOKEN_SECRET: 'a-production-secret-of-32-chars!!',
};

function errorOf(env: Env): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('when no variable is set', () => {
  const { config, warnings } = loadConfig({});

  it('uses the documented defaults', () => {
    expect(config).toMatchObject({
      nodeEnv: 'development',
      logLevel: 'info',
      redis: { url: 'redis://127.0.0.1:6379', clusterNodes: [], prefix: 'broker' },
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/broker',
      shards: 16,
      edge: {
        host: '0.0.0.0',
        port: 8080,
        id: `${hostname()}:8080`,
        tls: null,
        maxFrameBytes: 65536,
        ratePerS: 50,
        rateBurst: 100,
        loginTimeoutMs: 10000,
        pingIntervalMs: 25000,
        maxBufferedBytes: 1048576,
        drainMs: 10000,
        legacy: null,
      },
      api: { host: '0.0.0.0', port: 3000, handleWaitMs: 5000, legacyPrefix: '/api.php/index/index' },
      tokens: { ttlS: 31536000 },
      healthPort: 9090,
      delivery: { firstRetryMs: 2000, maxRetryMs: 60000, attempts: 8 },
      consumer: { batch: 500, leaseMs: 5000, retentionMs: 300000 },
    });
  });

  it('uses development secrets and says so in a warning each', () => {
    expect(config.api.keys).toEqual(['dev-key']);
    expect(config.tokens.secret.length).toBeGreaterThanOrEqual(32);
    expect(warnings).toHaveLength(2);
    expect(warnings.find((w) => w.includes('API_KEYS'))).toBeDefined();
    expect(warnings.find((w) => w.includes('DEVICE_TOKEN_SECRET'))).toBeDefined();
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ EDGE_PORT: '', LOG_LEVEL: '' }).config.edge.port).toBe(8080);
  });

  it('names the edge after the host and its port when EDGE_ID is unset', () => {
    expect(loadConfig({ EDGE_PORT: '8081' }).config.edge.id).toBe(`${hostname()}:8081`);
    expect(loadConfig({ EDGE_PORT: '8081', EDGE_ID: 'edge-2' }).config.edge.id).toBe('edge-2');
  });
});

describe('when variables are set', () => {
  it('reads each of them', () => {
    const { config, warnings } = loadConfig({
      ...PRODUCTION,
      API_KEYS: ' k1 , k2,,',
      REDIS_CLUSTER_NODES: 'r1:7000, r2:7001',
      SHARDS: '64',
      EDGE_TLS_CERT: '/tls/cert.pem',
      EDGE_TLS_KEY: '/tls/key.pem',
      EDGE_TLS_CA: '/tls/ca.pem',
      DELIVERY_RETRY_ATTEMPTS: '3',
      LOG_LEVEL: 'warn',
    });
    expect(warnings).toEqual([]);
    expect(config.api.keys).toEqual(['k1', 'k2']);
    expect(config.redis.clusterNodes).toEqual([
      { host: 'r1', port: 7000 },
      { host: 'r2', port: 7001 },
    ]);
    expect(config.shards).toBe(64);
    expect(config.edge.tls).toEqual({
      certFile: '/tls/cert.pem',
      keyFile: '/tls/key.pem',
      caFile: '/tls/ca.pem',
    });
    expect(config.delivery.attempts).toBe(3);
    expect(config.logLevel).toBe('warn');
  });

  it('turns the original protocol on with its CA, on its path, and the back-office endpoints off with `off`', () => {
    const tls = { EDGE_TLS_CERT: '/tls/cert.pem', EDGE_TLS_KEY: '/tls/key.pem' };
    const on = loadConfig({ ...tls, EDGE_LEGACY_CA: '/tls/legacy-ca.pem' }).config;
    expect(on.edge.legacy).toEqual({ caFile: '/tls/legacy-ca.pem', path: '/legacy', allowMd5: false });
    const md5 = loadConfig({ ...tls, EDGE_LEGACY_CA: '/ca.pem', EDGE_LEGACY_ALLOW_MD5: 'true' });
    expect(md5.config.edge.legacy?.allowMd5).toBe(true);
    expect(md5.warnings.join('\n')).toMatch(/EDGE_LEGACY_ALLOW_MD5 is on/);
    const moved = loadConfig({ ...tls, EDGE_LEGACY_CA: '/ca.pem', EDGE_LEGACY_PATH: '/ws-old' }).config;
    expect(moved.edge.legacy?.path).toBe('/ws-old');
    const root = loadConfig({ ...tls, EDGE_LEGACY_CA: '/ca.pem', EDGE_LEGACY_PATH: '/' }).config;
    expect(root.edge.legacy?.path).toBe('/');
    expect(loadConfig({ API_LEGACY_PREFIX: '/index.php' }).config.api.legacyPrefix).toBe('/index.php');
    expect(loadConfig({ API_LEGACY_PREFIX: 'off' }).config.api.legacyPrefix).toBeNull();
  });

  it('accepts rediss and postgresql URLs', () => {
    const { config } = loadConfig({ REDIS_URL: 'rediss://r:6380', DATABASE_URL: 'postgresql://u@db/x' });
    expect(config.redis.url).toBe('rediss://r:6380');
    expect(config.databaseUrl).toBe('postgresql://u@db/x');
  });
});

describe('when a value is invalid', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['EDGE_PORT', 'eighty', /^EDGE_PORT: expected an integer from 0 to 65535, got "eighty"$/],
    ['EDGE_PORT', '65536', /^EDGE_PORT: expected an integer from 0 to 65535/],
    ['EDGE_PORT', '80.5', /^EDGE_PORT: expected an integer/],
    ['API_PORT', '-1', /^API_PORT: expected an integer from 0 to 65535/],
    ['HEALTH_PORT', '1e3', /^HEALTH_PORT: expected an integer/],
    ['SHARDS', '0', /^SHARDS: expected an integer from 1 to 1024, got "0"$/],
    ['SHARDS', '2000', /^SHARDS: expected an integer from 1 to 1024/],
    [
      'LOG_LEVEL',
      'verbose',
      /^LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"$/,
    ],
    ['REDIS_URL', 'localhost:6379', /^REDIS_URL: expected a URL \(redis: or rediss:\)/],
    ['REDIS_URL', 'http://localhost:6379', /^REDIS_URL: expected a URL \(redis: or rediss:\)/],
    ['DATABASE_URL', 'mysql://db/broker', /^DATABASE_URL: expected a URL \(postgres: or postgresql:\)/],
    ['REDIS_CLUSTER_NODES', 'r1,r2', /^REDIS_CLUSTER_NODES: expected host:port,host:port,\.\.\./],
    ['REDIS_PREFIX', 'my prefix', /^REDIS_PREFIX: expected 1-64 of A-Z a-z 0-9 _ \. : -/],
    ['REDIS_PREFIX', '{tag}', /^REDIS_PREFIX: expected 1-64/],
    ['EDGE_MAX_FRAME_BYTES', '100', /^EDGE_MAX_FRAME_BYTES: expected an integer from 256/],
    ['EDGE_RATE_PER_S', '0', /^EDGE_RATE_PER_S: expected an integer from 1/],
    ['EDGE_RATE_BURST', 'lots', /^EDGE_RATE_BURST: expected an integer/],
    ['EDGE_LOGIN_TIMEOUT_MS', '5', /^EDGE_LOGIN_TIMEOUT_MS: expected an integer from 10/],
    ['EDGE_PING_INTERVAL_MS', '1', /^EDGE_PING_INTERVAL_MS: expected an integer from 10/],
    ['EDGE_MAX_BUFFERED_BYTES', '12', /^EDGE_MAX_BUFFERED_BYTES: expected an integer from 1024/],
    ['EDGE_DRAIN_MS', '-5', /^EDGE_DRAIN_MS: expected an integer from 0/],
    ['EDGE_ACK_LINGER_MS', '1001', /^EDGE_ACK_LINGER_MS: expected an integer from 0 to 1000/],
    ['API_HANDLE_WAIT_MS', 'soon', /^API_HANDLE_WAIT_MS: expected an integer/],
    ['DEVICE_TOKEN_TTL_S', '0', /^DEVICE_TOKEN_TTL_S: expected an integer from 1/],
    ['DELIVERY_RETRY_FIRST_MS', '0', /^DELIVERY_RETRY_FIRST_MS: expected an integer from 1/],
    ['DELIVERY_RETRY_MAX_MS', 'x', /^DELIVERY_RETRY_MAX_MS: expected an integer/],
    ['DELIVERY_RETRY_ATTEMPTS', '101', /^DELIVERY_RETRY_ATTEMPTS: expected an integer from 1 to 100/],
    ['DELIVERY_ACK_TIMEOUT_MS', '50', /^DELIVERY_ACK_TIMEOUT_MS: expected an integer from 100/],
    ['CONSUMER_BATCH', '0', /^CONSUMER_BATCH: expected an integer from 1 to 10000/],
    ['CONSUMER_LEASE_MS', '99', /^CONSUMER_LEASE_MS: expected an integer from 100/],
    ['STREAM_RETENTION_MS', '-1', /^STREAM_RETENTION_MS: expected an integer from 0/],
    ['PERSISTER_LINGER_MS', '1001', /^PERSISTER_LINGER_MS: expected an integer from 0 to 1000/],
    ['DISPATCHER_LINGER_MS', '-1', /^DISPATCHER_LINGER_MS: expected an integer from 0 to 1000/],
    ['EDGE_LEGACY_PATH', 'legacy', /^EDGE_LEGACY_PATH: expected a path like \/legacy/],
    ['EDGE_LEGACY_PATH', '/ws', /^EDGE_LEGACY_PATH: expected a path the edge does not serve already/],
    ['EDGE_LEGACY_ALLOW_MD5', 'yes', /^EDGE_LEGACY_ALLOW_MD5: expected one of true, false/],
    ['API_LEGACY_PREFIX', '/api.php/index/index/', /^API_LEGACY_PREFIX: expected a path like \/legacy/],
    ['API_LEGACY_PREFIX', '/v1/legacy', /^API_LEGACY_PREFIX: expected a prefix outside \/v1 and \/console/],
  ];

  for (const [name, value, message] of cases) {
    it(`names ${name} and what it expected for ${JSON.stringify(value)}`, () => {
      const error = errorOf({ [name]: value });
      expect(error.name).toBe('ConfigError');
      expect(error.message).toMatch(message);
    });
  }

  it('has a case for every variable that takes a checked value', () => {
    const free = [
      'NODE_ENV',
      'EDGE_HOST',
      'API_HOST',
      'EDGE_ID',
      'EDGE_TLS_CERT',
      'EDGE_TLS_KEY',
      'EDGE_TLS_CA',
      'EDGE_LEGACY_CA',
    ];
    const secrets = ['API_KEYS', 'DEVICE_TOKEN_SECRET'];
    const checked = VARIABLES.map((v) => v.name).filter((name) => ![...free, ...secrets].includes(name));
    expect(new Set(cases.map(([name]) => name))).toEqual(new Set(checked));
  });

  it('refuses a short device token secret without printing it', () => {
    const error = errorOf({ DEVICE_TOKEN_SECRET: 'short-secret' });
    expect(error.message).toMatch(/^DEVICE_TOKEN_SECRET: expected at least 32 characters/);
    expect(error.message).not.toContain('short-secret');
  });

  it('refuses the original protocol without TLS, which it needs for its client certificates', () => {
    expect(errorOf({ EDGE_LEGACY_CA: '/tls/legacy-ca.pem' }).message).toMatch(
      /^EDGE_LEGACY_CA: expected EDGE_TLS_CERT and EDGE_TLS_KEY set too/,
    );
  });

  it('refuses a TLS certificate without its key, and a key without its certificate', () => {
    expect(errorOf({ EDGE_TLS_CERT: '/c.pem' }).message).toMatch(
      /EDGE_TLS_CERT and EDGE_TLS_KEY set together/,
    );
    expect(errorOf({ EDGE_TLS_KEY: '/k.pem' }).message).toMatch(
      /EDGE_TLS_CERT and EDGE_TLS_KEY set together/,
    );
  });
});

describe('when NODE_ENV is production', () => {
  it('starts with both secrets set, without warnings', () => {
    const { config, warnings } = loadConfig(PRODUCTION);
    expect(config.nodeEnv).toBe('production');
    expect(config.api.keys).toEqual(['k1']);
    expect(config.tokens.secret).toBe(PRODUCTION.DEVICE_TOKEN_SECRET);
    expect(warnings).toEqual([]);
  });

  it('stops on a missing API_KEYS, naming it', () => {
    for (const API_KEYS of [undefined, '', ' , ']) {
      const error = errorOf({ ...PRODUCTION, API_KEYS });
      expect(error.message).toMatch(/^API_KEYS: expected at least one key \(NODE_ENV=production\)/);
    }
  });

  it('stops on a missing DEVICE_TOKEN_SECRET, naming it', () => {
    for (const DEVICE_TOKEN_SECRET of [undefined, '']) {
      const error = errorOf({ ...PRODUCTION, DEVICE_TOKEN_SECRET });
      expect(error.message).toMatch(/^DEVICE_TOKEN_SECRET: expected a secret \(NODE_ENV=production\)/);
    }
  });

  it('never falls back to the development secrets', () => {
    const { config } = loadConfig(PRODUCTION);
    const { config: dev } = loadConfig({});
    expect(config.api.keys).not.toContain(dev.api.keys[0]);
    expect(config.tokens.secret).not.toBe(dev.tokens.secret);
  });
});

describe('when the configuration is returned', () => {
  const { config } = loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000', EDGE_TLS_CERT: '/c', EDGE_TLS_KEY: '/k' });

  it('is frozen all the way down', () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.edge)).toBe(true);
    expect(Object.isFrozen(config.edge.tls)).toBe(true);
    expect(Object.isFrozen(config.api.keys)).toBe(true);
    expect(Object.isFrozen(config.redis.clusterNodes[0])).toBe(true);
  });

  it('refuses changes', () => {
    expect(() => {
      (config.edge as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.api.keys as string[]).push('sneaky');
    }).toThrow(TypeError);
    expect(config.edge.port).toBe(8080);
  });

  it('reads only the object it was given, never process.env', () => {
    const before = process.env.EDGE_PORT;
    process.env.EDGE_PORT = '9999';
    try {
      expect(loadConfig({}).config.edge.port).toBe(8080);
    } finally {
      if (before === undefined) delete process.env.EDGE_PORT;
      else process.env.EDGE_PORT = before;
    }
  });
});

describe('the list of variables', () => {
  it('names each variable once, in SCREAMING_SNAKE', () => {
    const names = VARIABLES.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[A-Z][A-Z0-9_]*$/);
  });

  it('documents every variable', () => {
    for (const variable of VARIABLES) expect(variable.doc.length, variable.name).toBeGreaterThan(5);
  });

  it('includes the variables the specification requires', () => {
    const names = VARIABLES.map((v) => v.name);
    for (const required of [
      'REDIS_URL',
      'DATABASE_URL',
      'EDGE_PORT',
      'API_PORT',
      'API_KEYS',
      'DEVICE_TOKEN_SECRET',
      'LOG_LEVEL',
      'EDGE_TLS_CERT',
      'EDGE_TLS_KEY',
      'EDGE_TLS_CA',
      'REDIS_CLUSTER_NODES',
      'EDGE_ID',
      'HEALTH_PORT',
    ]) {
      expect(names).toContain(required);
    }
  });
});
