// A run's figures → the run's section of BENCHMARKS.md (between its markers; the hand-written analysis around
// them stays) and its latency chart in docs/bench/. The targets are judged here, never in tests.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { ConnectionsResult } from '../connections.bench';
import type { LatencyResult } from '../latency.bench';
import type { MosquittoResult } from '../mosquitto.bench';
import type { RedisXaddResult } from '../redis-xadd.bench';
import type { ThroughputResult } from '../throughput.bench';
import { type CpuUse, describeRedisTop } from './cpu';
import type { Machine } from './machine';
import type { OtherBench } from './others';
import { round, type Summary } from './stats';
import { latencyChart } from './svg';

export interface RunReport {
  mode: 'quick' | 'full';
  command: string;
  date: string;
  machine: Machine;
  loadAtStart: string;
  /** Load average when each scenario started. */
  loads: Record<string, string>;
  commit: string;
  durationS?: number;
  /** The other bench/*.bench.ts files, run as they are (full runs only). */
  others?: OtherBench[];
  scenarios: {
    throughput?: ThroughputResult;
    latency?: LatencyResult[];
    connections?: ConnectionsResult;
    mosquitto?: MosquittoResult;
    redis?: RedisXaddResult;
  };
}

const FILE = 'BENCHMARKS.md';
const ms = (value: number) => (Number.isFinite(value) ? `${round(value, 1)}` : '—');
const num = (value: number) => value.toLocaleString('en-US');
/** A ratio with two significant digits, however small. */
const ratio = (value: number) => (Number.isFinite(value) ? `${Number(value.toPrecision(2))}` : '—');
const verdict = (ok: boolean | null | 'recorded') =>
  ok === 'recorded' ? 'recorded (no target)' : ok === null ? 'not measured' : ok ? '**met**' : '**missed**';

function chartFile(mode: string): string {
  return `docs/bench/latency-${mode}.svg`;
}

interface TargetRow {
  target: string;
  measured: string;
  /** 'recorded': a figure the table keeps for every rate, with no target of its own. */
  ok: boolean | null | 'recorded';
}

/** The processes whose CPU a notify costs: the broker's, Redis and PostgreSQL (not the load generator). */
const SERVING = (name: string) =>
  name.startsWith('edge') || ['dispatcher', 'persister', 'redis', 'postgres'].includes(name);

/** Milliseconds of CPU (broker processes, Redis, PostgreSQL) per notify, from a window's cores and rate. */
export function cpuMsPerNotify(cpu: CpuUse, notifiesPerS: number): number | null {
  if (notifiesPerS <= 0) return null;
  const cores = Object.entries(cpu.cores).reduce((sum, [name, used]) => sum + (SERVING(name) ? used : 0), 0);
  return Math.round((cores * 1000 * 1000) / notifiesPerS) / 1000;
}

/** Issue 18's targets (this round): the price of a notify at every rate, and no work wasted under load. */
function targets(report: RunReport): TargetRow[] {
  const { throughput: t, latency, connections, mosquitto } = report.scenarios;
  const rows: TargetRow[] = [];
  const share = t && mosquitto ? t.deliveriesPerS / mosquitto.deliveriesPerS : null;
  rows.push({
    target: 'deliveries/s acked ≥ 10,000, 0 re-pushes, last row projected ≤ 2 s after the load stops',
    measured: t
      ? `${num(t.deliveriesPerS)}/s, ${num(t.repushes)} re-pushes, last row after ${t.projectionDrainS ?? '—'} s`
      : '—',
    ok: t ? t.deliveriesPerS >= 10_000 && t.repushes === 0 && (t.projectionDrainS ?? 99) <= 2 : null,
  });
  rows.push({
    target: 'deliveries/s ≥ ×0.5 Mosquitto QoS 1 (same run)',
    measured:
      share === null
        ? '—'
        : `${num(t!.deliveriesPerS)} vs ${num(mosquitto!.deliveriesPerS)} (×${ratio(share)})`,
    ok: share === null ? null : share >= 0.5,
  });
  const p99Target: Record<number, number> = { 250: 5, 1000: 10, 3000: 50 };
  for (const l of latency ?? []) {
    const limit = p99Target[l.rate];
    if (limit === undefined) continue;
    const notSustained = l.stoppedAtS != null ? ` (not sustained: stopped after ${l.stoppedAtS} s)` : '';
    rows.push({
      target: `p99 notify → received ≤ ${limit} ms at ${num(l.rate)}/s${l.rate === 3000 ? ', sustained' : ''}`,
      measured: `${ms(l.received.p99)} ms at ${num(l.achievedPerS)}/s achieved${notSustained}`,
      ok: l.received.p99 <= limit && !notSustained,
    });
  }
  const at1000 = latency?.find((l) => l.rate === 1000);
  rows.push({
    target: 'p99 notify → row delivered ≤ 150 ms at 1,000/s',
    measured: at1000 ? `${ms(at1000.projected.p99)} ms` : '—',
    ok: at1000
      ? at1000.projected.p99 <= 150 && at1000.projectionMissing === 0 && at1000.stoppedAtS == null
      : null,
  });
  for (const l of latency ?? []) {
    const perNotify = cpuMsPerNotify(l.cpu, l.achievedPerS);
    rows.push({
      target: `CPU per notify (broker, Redis, PostgreSQL) at ${num(l.rate)}/s${l.rate === 250 ? ' ≤ 0.4 ms' : ''}`,
      measured: perNotify === null ? '—' : `${perNotify} ms`,
      ok: perNotify === null ? null : l.rate === 250 ? perNotify <= 0.4 : 'recorded',
    });
    rows.push({
      target: `re-pushes at ${num(l.rate)}/s = 0`,
      measured: num(l.repushes),
      ok: l.repushes === 0,
    });
  }
  const atSaturation = t ? cpuMsPerNotify(t.cpu, t.notifiesPerS) : null;
  rows.push({
    target: 'CPU per notify at saturation (throughput window) ≤ 0.3 ms',
    measured: atSaturation === null ? '—' : `${atSaturation} ms`,
    ok: atSaturation === null ? null : atSaturation <= 0.3,
  });
  rows.push({
    target: '≤ 10 KiB per idle logged-in connection',
    measured: connections
      ? `${connections.rssPerConnectionKiB} KiB RSS at ${num(connections.connected)} connections`
      : '—',
    ok: connections ? connections.rssPerConnectionKiB <= 10 : null,
  });
  rows.push({
    target: '10,000 reconnects with logins, one edge ≤ 5 s',
    measured: connections
      ? `${connections.reconnectS} s for ${num(connections.reconnected)}${connections.reconnect < 10_000 ? ' (quick size)' : ''}`
      : '—',
    ok: connections
      ? connections.reconnect >= 10_000
        ? connections.reconnectS <= 5 && connections.reconnectFailed === 0
        : null
      : null,
  });
  return rows;
}

function latencyRow(l: LatencyResult, label: string, s: Summary): string {
  const offered = l.stoppedAtS === null ? num(l.rate) : `${num(l.rate)} (stopped at ${l.stoppedAtS} s)`;
  return `| ${offered} | ${num(l.achievedPerS)} | ${label} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.p999)} | ${ms(s.max)} | ${num(s.count)} |`;
}

export function renderSection(report: RunReport): string {
  const { throughput: t, latency, connections: c, mosquitto: q, redis: r } = report.scenarios;
  return [
    ...headerLines(report),
    ...(t || q || r ? peerLines(t, q, r) : []),
    ...(t ? cpuLines(t, q) : []),
    ...(latency?.length ? latencyLines(latency, report.mode) : []),
    ...(c ? connectionLines(c) : []),
    ...(report.others?.length ? otherLines(report.others) : []),
  ].join('\n');
}

function headerLines(report: RunReport): string[] {
  const m = report.machine;
  const out: string[] = [];
  out.push(
    `### ${report.mode === 'full' ? 'Full' : 'Quick'} run — ${report.date.slice(0, 16).replace('T', ' ')} UTC`,
  );
  out.push('');
  out.push(`- Command: \`${report.command}\` (took ${report.durationS ?? '?'} s)`);
  out.push(
    `- Machine: ${m.cores} cores (\`nproc\`), ${m.cpuModel}, ${m.memoryGiB} GiB memory, Node ${m.node}, Linux ${m.kernel}`,
  );
  out.push(`- Load average at start: ${report.loadAtStart} (other work shares this machine)`);
  out.push('- As each scenario started (a starved machine shows in the Redis round trip first):');
  for (const [scenario, note] of Object.entries(report.loads)) out.push(`  - ${scenario}: ${note}`);
  out.push(`- Code: ${report.commit}`);
  out.push('');
  out.push('| target | measured | verdict |', '|---|---|---|');
  for (const row of targets(report)) out.push(`| ${row.target} | ${row.measured} | ${verdict(row.ok)} |`);
  out.push('');
  return out;
}

function peerLines(t?: ThroughputResult, q?: MosquittoResult, r?: RedisXaddResult): string[] {
  const out: string[] = [];
  out.push('**Throughput and peers** (same shops, same messages in flight per sender)', '');
  out.push(
    '| system | senders | in flight each | window | notifies (publishes) acked/s | deliveries/s | rows/s |',
  );
  out.push('|---|---|---|---|---|---|---|');
  if (t)
    out.push(
      `| broker (edge + dispatcher + persister) | ${num(t.shops)} | ${t.inFlightPerSub} | ${t.windowS} s | ${num(t.notifiesPerS)} | ${num(t.deliveriesPerS)} | ${num(t.rowsPerS)} |`,
    );
  if (q)
    out.push(
      `| ${q.version}, QoS 1, clean: false | ${num(q.shops)} | ${q.inFlightPerPublisher} | ${q.windowS} s | ${num(q.publishesPerS)} | ${num(q.deliveriesPerS)} | — |`,
    );
  if (r) {
    out.push(
      `| redis ${r.version} XADD, 50 clients | — | 1 | ${num(r.requests)} req | ${num(r.xaddPerS)} | — | — |`,
    );
    out.push(
      `| redis ${r.version} XADD, 50 clients, pipeline 16 | — | 16 | ${num(r.requests)} req | ${num(r.xaddPipelinedPerS)} | — | — |`,
    );
  }
  out.push('');
  const ratios: string[] = [];
  if (t && q)
    ratios.push(`broker deliveries/s ÷ Mosquitto's = **${ratio(t.deliveriesPerS / q.deliveriesPerS)}**`);
  if (t && r) {
    ratios.push(`broker notifies/s ÷ Redis XADD/s = **${ratio(t.notifiesPerS / r.xaddPerS)}**`);
    ratios.push(`÷ pipelined XADD/s = **${ratio(t.notifiesPerS / r.xaddPipelinedPerS)}**`);
  }
  if (ratios.length) out.push(`Ratios: ${ratios.join('; ')}.`, '');
  if (t) {
    out.push(
      `After the broker's load stopped, the last deliveries arrived after ${t.deliveryDrainS ?? '(not within the timeout)'} s and the last delivered row was projected after ${t.projectionDrainS ?? '(not within the timeout)'} s; ${num(t.repushes)} re-pushes by the dispatcher, ${num(t.refused)} refused notifies; connections closed by the server (and reconnected by the clients): ${t.disruptions}.`,
      '',
    );
    out.push(
      `PostgreSQL (our database) during the window: ${num(t.postgres.commitsPerS)} commits/s, ${num(t.postgres.insertedPerS)} rows inserted/s, ${num(t.postgres.updatedPerS)} rows updated/s; share of \`messages\` updates that were HOT (no index writes): ${t.postgres.messagesHotUpdateShare}.`,
      '',
    );
  }
  return out;
}

function cpuLines(t: ThroughputResult, q?: MosquittoResult): string[] {
  const out: string[] = [];
  out.push(
    "CPU during the broker throughput window: cores used (CPU-seconds per second), cores' worth of time spent runnable but waiting for a CPU (run-queue time from schedstat: contention), CPU per notify:",
    '',
  );
  const names = Object.keys(t.cpu.cores);
  out.push(`| | ${names.join(' | ')} |`, `|---|${names.map(() => '---').join('|')}|`);
  out.push(`| cores used | ${names.map((k) => t.cpu.cores[k]).join(' | ')} |`);
  out.push(`| waiting for a CPU | ${names.map((k) => t.cpu.waiting[k] ?? '—').join(' | ')} |`);
  out.push(
    `| µs per notify | ${names.map((k) => (k === 'machine' || k === 'other work' ? '—' : Math.round(((t.cpu.cores[k] ?? 0) * 1e6) / Math.max(1, t.notifiesPerS)))).join(' | ')} |`,
    '',
  );
  out.push(
    `Redis's busiest commands in the window (all clients of the shared Redis): ${describeRedisTop(t.cpu)}.`,
    '',
  );
  if (q)
    out.push(
      `Mosquitto window: mosquitto ${q.cores.mosquitto} cores, load generator (mqtt.js) ${q.cores['load generator']} cores.`,
      '',
    );
  return out;
}

function latencyLines(latency: LatencyResult[], mode: string): string[] {
  const out: string[] = [];
  out.push('**Latency at fixed rates** (open loop, ms; "received" counts each main device\'s copy)', '');
  out.push('| offered/s | achieved/s | from notify sent to | p50 | p99 | p99.9 | max | samples |');
  out.push('|---|---|---|---|---|---|---|---|');
  for (const l of latency) {
    out.push(latencyRow(l, 'durable reply at the sender', l.reply));
    out.push(latencyRow(l, 'message received by a main', l.received));
    out.push(
      latencyRow(
        l,
        `row delivered in PostgreSQL${l.projectionMissing ? ` (${l.projectionMissing} never seen)` : ''}`,
        l.projected,
      ),
    );
  }
  out.push('');
  out.push(
    `"Stopped at" marks a rate the broker did not sustain: sending stops once 3 s' worth of notifies are unanswered (past that an open loop measures only its own queue, and poisons the next rate). Refused notifies, server-side closes and drain: ${latency.map((l) => `${num(l.rate)}/s: ${l.refused} refused, closes ${l.disruptions}, drained ${l.drainS === null ? 'not within the timeout' : `${l.drainS} s after the window`}`).join('; ')}. Windows of ${latency[0]!.windowS} s after a warm-up; load generator event-loop delay p99: ${latency.map((l) => `${l.generatorLagP99Ms} ms at ${num(l.rate)}/s`).join(', ')}; projection polled every ${latency[0]!.pollIntervalMs} ms plus one query.`,
    '',
  );
  for (const l of latency) {
    out.push(
      `During the ${num(l.rate)}/s window: ${num(l.repushes)} re-pushes, ${num(l.commitsPerS)} persister transactions/s; cores used (waiting for a CPU): ${Object.entries(
        l.cpu.cores,
      )
        .map(([k, v]) => `${k} ${v}${l.cpu.waiting[k] === undefined ? '' : ` (${l.cpu.waiting[k]})`}`)
        .join(', ')}. Redis: ${describeRedisTop(l.cpu)}.`,
      '',
    );
  }
  out.push(`![latency by percentile](${chartFile(mode)})`, '');
  return out;
}

function connectionLines(c: ConnectionsResult): string[] {
  const out: string[] = [];
  out.push('**Connections on one edge**', '');
  out.push('| measure | value |', '|---|---|');
  out.push(
    `| idle logged-in connections | ${num(c.connected)} of ${num(c.total)} (${num(c.failed)} failed), opened in ${c.connectS} s |`,
  );
  out.push(`| edge RSS before → after | ${c.rssBeforeMiB} → ${c.rssAfterMiB} MiB |`);
  out.push(`| RSS per connection | ${c.rssPerConnectionKiB} KiB |`);
  out.push(
    `| after a forced full GC: RSS / V8 heap+external per connection | ${c.rssAfterGcPerConnectionKiB} / ${c.heapPerConnectionKiB} KiB |`,
  );
  out.push(
    `| ${num(c.reconnect)} devices dropped, then reconnected and logged in | ${c.reconnectS} s (${num(c.reconnected)} ok, ${num(c.reconnectFailed)} failed) |`,
  );
  out.push(
    `| edge CPU during the reconnect burst | ${c.edgeCoresDuringReconnect} cores, ${c.edgeCpuMsPerLogin} ms per login |`,
  );
  out.push('');
  out.push(
    `${c.generators} load-generator processes, source addresses ${c.sourceAddresses.join(', ')}, at most ${c.handshakesInFlight} handshakes in flight.${c.total < 15_000 ? ' Quick mode: smaller counts than the targets name.' : ''}${c.firstError ? ` First error: ${c.firstError}.` : ''}`,
    '',
  );
  return out;
}

function otherLines(others: OtherBench[]): string[] {
  const out: string[] = [];
  out.push('**Other benchmarks in bench/** (owned by their services, run as they are, output kept)', '');
  for (const other of others) {
    out.push(
      `\`${other.file}\` (exit ${other.exitCode}, ${other.seconds} s):`,
      '',
      '```',
      other.output,
      '```',
      '',
    );
  }
  return out;
}

/** The run's latency chart (SVG), or null without latency results. */
export function chart(report: RunReport): string | null {
  const latency = report.scenarios.latency;
  if (!latency?.length) return null;
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const series = latency.flatMap((l, i) => {
    const rate = `${num(l.rate)}/s${l.stoppedAtS === null ? '' : ' (not sustained)'}`;
    return [
      { label: `received @ ${rate}`, color: colors[i % colors.length]!, points: l.curves.received },
      {
        label: `row delivered @ ${rate}`,
        color: colors[i % colors.length]!,
        dashed: true,
        points: l.curves.projected,
      },
    ];
  });
  return latencyChart(
    `Latency from notify: received by a main (solid), row delivered (dotted); ${report.mode} run ${report.date.slice(0, 10)}`,
    series,
    [
      { label: 'target p99 received 10 ms at 1,000/s', ms: 10, color: '#ff7f0e' },
      { label: 'target p99 projected 150 ms at 1,000/s', ms: 150, color: '#8c564b' },
    ],
  );
}

/**
 * Replaces the section between `<!-- bench:<name>:begin -->` and its end marker in BENCHMARKS.md (appending it,
 * markers and all, when missing); the rest of the page is written by hand and left alone.
 */
export function writeSection(name: string, body: string): void {
  const begin = `<!-- bench:${name}:begin -->`;
  const end = `<!-- bench:${name}:end -->`;
  const current = existsSync(FILE) ? readFileSync(FILE, 'utf8') : '# Benchmarks\n';
  const section = `${begin}\n${body}\n${end}`;
  const from = current.indexOf(begin);
  const to = current.indexOf(end);
  const next =
    from >= 0 && to > from
      ? `${current.slice(0, from)}${section}${current.slice(to + end.length)}`
      : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(FILE, next);
}

/** Replaces the run's section of BENCHMARKS.md (creating the file and markers when missing) and its chart. */
export function writeReport(report: RunReport): void {
  writeSection(report.mode, renderSection(report));
  mkdirSync('docs/bench', { recursive: true });
  const svg = chart(report);
  if (svg) writeFileSync(chartFile(report.mode), svg);
  writeFileSync(`docs/bench/results-${report.mode}.json`, `${JSON.stringify(report, null, 2)}\n`);
}
