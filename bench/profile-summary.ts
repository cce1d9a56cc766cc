// `tsx bench/profile-summary.ts <file.cpuprofile> [top]`: where a broker process spent its CPU (from
// `npm run bench -- --profile`): self time by package and by function, and inclusive time of the broker's own
// functions. Prints text for BENCHMARKS.md; reads nothing but the profile.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return 'node core';
  const own =
    /\/work\/[^/]+\/[^/]+\/((?:libs|services)\/[^/]+|cli|bench)/.exec(url) ??
    /\/(libs\/[^/]+|services\/[^/]+)/.exec(url);
  return own ? own[1]! : url.replace(/^file:\/\//, '');
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\/.*?\/(node_modules|libs|services|cli|bench)\//, '$1/').replace(/^node:/, '');
}

export function summarize(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idleIds = profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id);
  const idle = idleIds.reduce((sum, id) => sum + (self.get(id) ?? 0), 0);
  const busy = total - idle;

  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)') continue;
    const pkg = packageOf(node.callFrame.url, node.callFrame.functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    const key = `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }

  // Inclusive time of our own code (libs/, services/): self plus everything called below it, once per stack.
  const inclusive = new Map<string, number>();
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (!/\/(libs|services)\/|\/dist\/broker\.mjs$/.test(frame.url)) continue; // sources, or the built bundle
      const key = `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }

  const pct = (us: number) => `${((100 * us) / Math.max(1, busy)).toFixed(1).padStart(5)} %`;
  const list = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, us]) => `  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`)
      .join('\n');
  return [
    `busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled (idle ${(idle / 1e6).toFixed(2)} s); shares are of busy time`,
    'self time by package:',
    list(byPackage, 15),
    'self time by function:',
    list(byFunction, top),
    'inclusive time of broker functions:',
    list(inclusive, top),
  ].join('\n');
}

const [file, top] = process.argv.slice(2);
if (file) {
  // The file is a V8 .cpuprofile written by --cpu-prof; its shape is fixed by V8.
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  console.log(summarize(profile, Number(top ?? 25)));
}
