// Prometheus metrics: one registry per process, default Node metrics once, each service's metrics beside it.
import client from 'prom-client';

export const registry = client.register;
let hasDefaults = false;

export function collectDefaultMetrics(): void {
  if (hasDefaults) return;
  hasDefaults = true;
  client.collectDefaultMetrics({ register: registry });
}

function existing<T>(name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

// Services may start more than once per process (tests, `start all`); a metric is defined once.
export function counter(name: string, help: string, labelNames: string[] = []): client.Counter {
  return (
    existing<client.Counter>(name) ?? new client.Counter({ name, help, labelNames, registers: [registry] })
  );
}

/**
 * With `collect`, the gauge is set when /metrics is scraped rather than on every change it measures (prom-client
 * hashes the labels of each `set`: ~6 µs, which a login paid three times).
 */
export function gauge(
  name: string,
  help: string,
  labelNames: string[] = [],
  collect?: (gauge: client.Gauge) => void,
): client.Gauge {
  return (
    existing<client.Gauge>(name) ??
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      ...(collect
        ? {
            collect(this: client.Gauge) {
              collect(this);
            },
          }
        : {}),
    })
  );
}

export function histogram(
  name: string,
  help: string,
  buckets: number[],
  labelNames: string[] = [],
): client.Histogram {
  return (
    existing<client.Histogram>(name) ??
    new client.Histogram({ name, help, buckets, labelNames, registers: [registry] })
  );
}
