// Configuration from the environment (SPEC §7), validated once at start. A wrong value names the variable and
// what it expected. Nothing else reads process.env.
import { hostname } from 'node:os';

type Parse<T> = (raw: string) => T;

export interface VariableSpec {
  name: string;
  /** The documented default, as written in the README; undefined when the variable is optional. */
  default?: string;
  doc: string;
}

/** Every variable the broker reads, its default and what it does. The README table is checked against this. */
export const VARIABLES: readonly VariableSpec[] = [
  { name: 'NODE_ENV', default: 'development', doc: '`production` makes missing secrets fatal' },
  { name: 'LOG_LEVEL', default: 'info', doc: 'pino level: trace, debug, info, warn, error, fatal, silent' },
  {
    name: 'REDIS_URL',
    default: 'redis://127.0.0.1:6379',
    doc: 'Redis holding the event log, presence and retries',
  },
  {
    name: 'REDIS_CLUSTER_NODES',
    doc: '`host:port,...`; when set, every service uses this Redis Cluster instead of REDIS_URL',
  },
  {
    name: 'REDIS_PREFIX',
    default: 'broker',
    doc: 'prefix of every Redis key (lets several brokers share one Redis)',
  },
  {
    name: 'DATABASE_URL',
    default: 'postgres://postgres@127.0.0.1:5432/broker',
    doc: 'PostgreSQL of the projections; the database is created when missing',
  },
  {
    name: 'SHARDS',
    default: '16',
    doc: 'number of event-log streams; a shop always maps to the same one (never change it on a live log)',
  },
  { name: 'EDGE_HOST', default: '0.0.0.0', doc: 'edge listen address' },
  { name: 'EDGE_PORT', default: '8080', doc: 'edge port: `/ws`, `/healthz`, `/readyz`, `/metrics`' },
  { name: 'EDGE_ID', doc: 'stable id of this edge (default `<hostname>:<EDGE_PORT>`)' },
  { name: 'EDGE_TLS_CERT', doc: 'PEM certificate file; with EDGE_TLS_KEY the edge serves wss' },
  { name: 'EDGE_TLS_KEY', doc: 'PEM private key file' },
  {
    name: 'EDGE_TLS_CA',
    doc: 'PEM CA file; turns on mutual TLS (`/ws` requires a client certificate it signed)',
  },
  {
    name: 'EDGE_LEGACY_CA',
    doc: "PEM CA file of the original system's device certificates; turns on the original device protocol on EDGE_LEGACY_PATH (needs EDGE_TLS_CERT and EDGE_TLS_KEY; see docs/migrating.md)",
  },
  {
    name: 'EDGE_LEGACY_PATH',
    default: '/legacy',
    doc: 'path of the original device protocol, when EDGE_LEGACY_CA turns it on',
  },
  {
    name: 'EDGE_LEGACY_ALLOW_MD5',
    default: 'false',
    doc: "`true`: take legacy device certificates signed with MD5, as the original write-up's CA made them (OpenSSL 3 refuses them; the edge then checks them itself: issued by EDGE_LEGACY_CA, its signature, their dates)",
  },
  { name: 'EDGE_MAX_FRAME_BYTES', default: '65536', doc: 'largest frame accepted; larger closes with 1009' },
  { name: 'EDGE_RATE_PER_S', default: '50', doc: 'frames per second per connection' },
  { name: 'EDGE_RATE_BURST', default: '100', doc: 'burst of frames above the rate' },
  { name: 'EDGE_LOGIN_TIMEOUT_MS', default: '10000', doc: 'time a socket has to log in' },
  {
    name: 'EDGE_PING_INTERVAL_MS',
    default: '25000',
    doc: 'ping interval; two missed pongs close the socket',
  },
  {
    name: 'EDGE_MAX_BUFFERED_BYTES',
    default: '1048576',
    doc: 'send buffer bound; above it the socket closes with 1013',
  },
  { name: 'EDGE_DRAIN_MS', default: '10000', doc: 'window over which SIGTERM closes sockets with 1001' },
  {
    name: 'EDGE_ACK_LINGER_MS',
    default: '10',
    doc: "how long an edge gathers its devices' acks to record them in one Redis write (0: each at once). A handle waits for the acks its edge already holds; an ack that reaches Redis after a handle of its request through another edge or the API is still recorded as that copy's delivery (until the device acks the copy's `handled` notice)",
  },
  { name: 'API_HOST', default: '0.0.0.0', doc: 'api listen address' },
  { name: 'API_PORT', default: '3000', doc: 'api port' },
  { name: 'API_KEYS', doc: 'comma-separated bearer keys of the REST API (required in production)' },
  {
    name: 'API_HANDLE_WAIT_MS',
    default: '5000',
    doc: 'how long `handle` waits for the projection before 503',
  },
  {
    name: 'API_LEGACY_PREFIX',
    default: '/api.php/index/index',
    doc: "path prefix of the original back office's endpoints (messageList, deal, check_online_main, notify_main), behind API_KEYS; `off` serves none",
  },
  {
    name: 'DEVICE_TOKEN_SECRET',
    doc: 'HMAC secret of device tokens, at least 32 characters (required in production)',
  },
  { name: 'DEVICE_TOKEN_TTL_S', default: '31536000', doc: 'lifetime of a minted device token' },
  { name: 'HEALTH_PORT', default: '9090', doc: 'persister and dispatcher `/healthz`, `/readyz`, `/metrics`' },
  {
    name: 'DELIVERY_RETRY_FIRST_MS',
    default: '2000',
    doc: 'first re-push of a message whose push reached no socket',
  },
  { name: 'DELIVERY_RETRY_MAX_MS', default: '60000', doc: 'longest wait between re-pushes' },
  { name: 'DELIVERY_RETRY_ATTEMPTS', default: '8', doc: 'pushes in all before DeliveryFailed' },
  {
    name: 'DELIVERY_ACK_TIMEOUT_MS',
    default: '60000',
    doc: 'a connection that leaves a pushed message unacked this long is closed (4408)',
  },
  { name: 'CONSUMER_BATCH', default: '500', doc: 'events read per batch by the persister and dispatcher' },
  { name: 'CONSUMER_LEASE_MS', default: '5000', doc: "a dead consumer's shards are taken over after this" },
  {
    name: 'PERSISTER_LINGER_MS',
    default: '40',
    doc: "least time between the persister's reads of the log; what arrives meanwhile, on every shard it holds, is committed in one transaction",
  },
  {
    name: 'DISPATCHER_LINGER_MS',
    default: '200',
    doc: "least time between the dispatcher's reads of the log; what arrives meanwhile is routed together (every notify, broadcast and handled notice is pushed by its append and never waits for it; only the retries of pushes that reached no edge do, whose first delay is DELIVERY_RETRY_FIRST_MS)",
  },
  {
    name: 'STREAM_RETENTION_MS',
    default: '300000',
    doc: 'the tail of archived, finished events the streams keep for operators (ms); older ones are trimmed',
  },
];

export class ConfigError extends Error {
  constructor(variable: string, expected: string, got: string) {
    super(`${variable}: expected ${expected}, got ${JSON.stringify(got)}`);
    this.name = 'ConfigError';
  }
}

const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parse<number> =>
  (raw) => {
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
      throw new Error(`an integer from ${min} to ${max}`);
    }
    return value;
  };
const port = int(0, 65535);
const text: Parse<string> = (raw) => raw;
const list: Parse<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const oneOf =
  <T extends string>(...allowed: T[]): Parse<T> =>
  (raw) => {
    if (!(allowed as string[]).includes(raw)) throw new Error(`one of ${allowed.join(', ')}`);
    return raw as T;
  };
const url =
  (...protocols: string[]): Parse<string> =>
  (raw) => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new Error(`a URL (${protocols.join(' or ')})`);
    }
    if (!protocols.includes(parsed.protocol)) throw new Error(`a URL (${protocols.join(' or ')})`);
    return raw;
  };
/** An absolute URL path without a trailing slash, query or fragment: `/legacy`, `/api.php/index/index`. */
const urlPath: Parse<string> = (raw) => {
  if (!/^(\/[A-Za-z0-9_.~-]+)+$/.test(raw))
    throw new Error('a path like /legacy (segments of A-Z a-z 0-9 _ . ~ -)');
  return raw;
};
const hostPorts: Parse<Array<{ host: string; port: number }>> = (raw) =>
  list(raw).map((item) => {
    const match = /^(.+):(\d+)$/.exec(item);
    if (!match) throw new Error('host:port,host:port,...');
    return { host: match[1]!, port: Number(match[2]) };
  });

export type Env = Readonly<Record<string, string | undefined>>;

const DEV_TOKEN_SECRET = 'development-device-token-secret-change-me!';
const DEV_API_KEY = 'dev-key';

export function loadConfig(env: Env) {
  const warnings: string[] = [];
  const specOf = (name: string) => VARIABLES.find((v) => v.name === name);
  function read<T>(name: string, parse: Parse<T>): T;
  function read<T>(name: string, parse: Parse<T>, optional: true): T | undefined;
  function read<T>(name: string, parse: Parse<T>, optional = false): T | undefined {
    const spec = specOf(name);
    if (!spec) throw new Error(`config variable ${name} is not documented in VARIABLES`);
    const raw = env[name] === undefined || env[name] === '' ? spec.default : env[name];
    if (raw === undefined) {
      if (optional) return undefined;
      throw new ConfigError(name, 'a value', '');
    }
    try {
      return parse(raw);
    } catch (err) {
      throw new ConfigError(name, (err as Error).message, raw);
    }
  }

  const nodeEnv = read('NODE_ENV', text);
  const isProduction = nodeEnv === 'production';
  const edgePort = read('EDGE_PORT', port);

  let apiKeys = read('API_KEYS', list, true) ?? [];
  if (apiKeys.length === 0) {
    if (isProduction) throw new ConfigError('API_KEYS', 'at least one key (NODE_ENV=production)', '');
    apiKeys = [DEV_API_KEY];
    warnings.push(`API_KEYS is not set: using the development key "${DEV_API_KEY}"`);
  }
  let tokenSecret = read('DEVICE_TOKEN_SECRET', text, true);
  if (tokenSecret === undefined) {
    if (isProduction) throw new ConfigError('DEVICE_TOKEN_SECRET', 'a secret (NODE_ENV=production)', '');
    tokenSecret = DEV_TOKEN_SECRET;
    warnings.push('DEVICE_TOKEN_SECRET is not set: using a development secret');
  } else if (tokenSecret.length < 32) {
    throw new ConfigError('DEVICE_TOKEN_SECRET', 'at least 32 characters', '<hidden>');
  }

  const tlsCert = read('EDGE_TLS_CERT', text, true);
  const tlsKey = read('EDGE_TLS_KEY', text, true);
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError('EDGE_TLS_KEY', 'EDGE_TLS_CERT and EDGE_TLS_KEY set together', tlsKey ?? '');
  }

  // SPEC §9.1: the original protocol needs a client certificate from the chain's CA, so it runs over TLS only.
  const legacyCa = read('EDGE_LEGACY_CA', text, true);
  if (legacyCa !== undefined && tlsCert === undefined) {
    throw new ConfigError(
      'EDGE_LEGACY_CA',
      'EDGE_TLS_CERT and EDGE_TLS_KEY set too (the original protocol runs over TLS only)',
      legacyCa,
    );
  }
  // `/` is allowed: the original server upgraded any path, so its devices may well connect to the root.
  const legacyPath = read('EDGE_LEGACY_PATH', (raw) => (raw === '/' ? raw : urlPath(raw)));
  if (['/ws', '/healthz', '/readyz', '/metrics'].includes(legacyPath)) {
    throw new ConfigError('EDGE_LEGACY_PATH', 'a path the edge does not serve already', legacyPath);
  }
  const legacyAllowMd5 = read('EDGE_LEGACY_ALLOW_MD5', oneOf('true', 'false')) === 'true';
  if (legacyAllowMd5 && legacyCa !== undefined) {
    warnings.push(
      'EDGE_LEGACY_ALLOW_MD5 is on: legacy device certificates signed with MD5 are taken; re-issue them with SHA-256 as devices are upgraded',
    );
  }
  const legacyPrefix = read('API_LEGACY_PREFIX', (raw) => (raw === 'off' ? null : urlPath(raw)));
  if (
    legacyPrefix !== null &&
    (legacyPrefix === '/v1' || legacyPrefix.startsWith('/v1/') || legacyPrefix.startsWith('/console'))
  ) {
    throw new ConfigError('API_LEGACY_PREFIX', 'a prefix outside /v1 and /console', legacyPrefix);
  }

  const config = {
    nodeEnv,
    logLevel: read('LOG_LEVEL', oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent')),
    redis: {
      url: read('REDIS_URL', url('redis:', 'rediss:')),
      clusterNodes: read('REDIS_CLUSTER_NODES', hostPorts, true) ?? [],
      prefix: read('REDIS_PREFIX', (raw) => {
        if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(raw)) throw new Error('1-64 of A-Z a-z 0-9 _ . : -');
        return raw;
      }),
    },
    databaseUrl: read('DATABASE_URL', url('postgres:', 'postgresql:')),
    shards: read('SHARDS', int(1, 1024)),
    edge: {
      host: read('EDGE_HOST', text),
      port: edgePort,
      id: read('EDGE_ID', text, true) ?? `${hostname()}:${edgePort}`,
      tls:
        tlsCert && tlsKey
          ? { certFile: tlsCert, keyFile: tlsKey, caFile: read('EDGE_TLS_CA', text, true) }
          : null,
      maxFrameBytes: read('EDGE_MAX_FRAME_BYTES', int(256, 16 * 1024 * 1024)),
      ratePerS: read('EDGE_RATE_PER_S', int(1)),
      rateBurst: read('EDGE_RATE_BURST', int(1)),
      loginTimeoutMs: read('EDGE_LOGIN_TIMEOUT_MS', int(10)),
      pingIntervalMs: read('EDGE_PING_INTERVAL_MS', int(10)),
      maxBufferedBytes: read('EDGE_MAX_BUFFERED_BYTES', int(1024)),
      drainMs: read('EDGE_DRAIN_MS', int(0)),
      ackLingerMs: read('EDGE_ACK_LINGER_MS', int(0, 1000)),
      ackTimeoutMs: read('DELIVERY_ACK_TIMEOUT_MS', int(100)),
      /** SPEC §9.1: the original device protocol, on only when EDGE_LEGACY_CA names the CA of its certificates. */
      legacy:
        legacyCa === undefined
          ? null
          : {
              caFile: legacyCa,
              path: legacyPath,
              allowMd5: legacyAllowMd5,
            },
    },
    api: {
      host: read('API_HOST', text),
      port: read('API_PORT', port),
      keys: apiKeys,
      handleWaitMs: read('API_HANDLE_WAIT_MS', int(0)),
      /** SPEC §9.2: where the original back office's endpoints are served; null when `off`. */
      legacyPrefix,
    },
    tokens: { secret: tokenSecret, ttlS: read('DEVICE_TOKEN_TTL_S', int(1)) },
    healthPort: read('HEALTH_PORT', port),
    delivery: {
      firstRetryMs: read('DELIVERY_RETRY_FIRST_MS', int(1)),
      maxRetryMs: read('DELIVERY_RETRY_MAX_MS', int(1)),
      attempts: read('DELIVERY_RETRY_ATTEMPTS', int(1, 100)),
    },
    consumer: {
      batch: read('CONSUMER_BATCH', int(1, 10000)),
      leaseMs: read('CONSUMER_LEASE_MS', int(100)),
      retentionMs: read('STREAM_RETENTION_MS', int(0)),
    },
    persister: { readIntervalMs: read('PERSISTER_LINGER_MS', int(0, 1000)) },
    dispatcher: { readIntervalMs: read('DISPATCHER_LINGER_MS', int(0, 1000)) },
  };
  return { config: deepFreeze(config), warnings };
}

export type Config = ReturnType<typeof loadConfig>['config'];
export type EdgeConfig = Config['edge'];

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
