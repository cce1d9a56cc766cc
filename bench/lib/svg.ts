// The latency chart as plain SVG (no charting package): latency by percentile, x on a "nines" scale
// (0, 90, 99, 99.9, 99.99 %), y logarithmic in ms, one line per series, dashed lines for the targets.

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  points: Array<[number, number]>; // [quantile 0…1, latency ms]
}

export interface Target {
  label: string;
  ms: number;
  color: string;
}

const WIDTH = 880;
const HEIGHT = 440;
const PAD = { left: 64, right: 280, top: 40, bottom: 48 };
const MAX_NINES = 4;

const nines = (q: number) => Math.min(MAX_NINES, -Math.log10(Math.max(1e-12, 1 - q)));

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function latencyChart(title: string, series: Series[], targets: Target[]): string {
  const values = series
    .flatMap((s) => s.points.map(([, ms]) => ms))
    .filter((ms) => ms > 0 && Number.isFinite(ms));
  const all = [...values, ...targets.map((t) => t.ms)];
  const minMs = 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...all))));
  const maxMs = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  // Coordinates to one decimal: the chart is committed, and 17-digit floats make noisy diffs.
  const r1 = (v: number) => Math.round(v * 10) / 10;
  const x = (q: number) => r1(PAD.left + (nines(q) / MAX_NINES) * plotW);
  const y = (ms: number) =>
    r1(
      PAD.top +
        plotH -
        ((Math.log10(Math.max(minMs, ms)) - Math.log10(minMs)) / Math.log10(maxMs / minMs)) * plotH,
    );
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${PAD.left}" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  );
  // Grid: percentiles across, powers of ten (and 2, 5 between) up.
  for (let k = 0; k <= MAX_NINES; k++) {
    const q = 1 - 10 ** -k;
    const label = k === 0 ? '0' : `${(q * 100).toFixed(Math.max(0, k - 2))}`;
    out.push(
      `<line x1="${x(q)}" y1="${PAD.top}" x2="${x(q)}" y2="${PAD.top + plotH}" stroke="#ddd"/>`,
      `<text x="${x(q)}" y="${PAD.top + plotH + 18}" text-anchor="middle">${label}</text>`,
    );
  }
  for (let decade = minMs; decade <= maxMs; decade *= 10) {
    for (const m of [1, 2, 5]) {
      const ms = decade * m;
      if (ms > maxMs) break;
      out.push(
        `<line x1="${PAD.left}" y1="${y(ms)}" x2="${PAD.left + plotW}" y2="${y(ms)}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`,
        `<text x="${PAD.left - 6}" y="${y(ms) + 4}" text-anchor="end">${Number(ms.toPrecision(3))}</text>`,
      );
    }
  }
  out.push(
    `<text x="${PAD.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle">percentile (%)</text>`,
    `<text transform="translate(16 ${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`,
    `<rect x="${PAD.left}" y="${PAD.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
  );
  for (const target of targets) {
    out.push(
      `<line x1="${PAD.left}" y1="${y(target.ms)}" x2="${PAD.left + plotW}" y2="${y(target.ms)}" stroke="${target.color}" stroke-dasharray="6 4"/>`,
      `<text x="${PAD.left + plotW - 4}" y="${y(target.ms) - 4}" text-anchor="end" fill="${target.color}">${escapeXml(target.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const path = s.points
      .filter(([, ms]) => Number.isFinite(ms))
      .map(([q, ms], j) => `${j === 0 ? 'M' : 'L'}${x(q)},${y(ms)}`)
      .join(' ');
    out.push(
      `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="2 3"' : ''}/>`,
    );
    const ly = PAD.top + 10 + i * 20;
    out.push(
      `<line x1="${WIDTH - PAD.right + 14}" y1="${ly}" x2="${WIDTH - PAD.right + 38}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="2 3"' : ''}/>`,
      `<text x="${WIDTH - PAD.right + 44}" y="${ly + 4}">${escapeXml(s.label)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
