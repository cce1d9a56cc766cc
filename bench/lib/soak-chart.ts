// The soak's chart as plain SVG: one small panel per figure over time, so a leak shows as a slope and the
// restart as a step. No charting package, like the latency chart.

export interface Panel {
  title: string;
  unit: string;
  /** One line per series: label and [seconds, value] points. */
  series: Array<{ label: string; points: Array<[number, number]> }>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const PANEL_W = 420;
const PANEL_H = 190;
const PAD = { left: 58, right: 12, top: 30, bottom: 28 };
const COLUMNS = 2;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const r1 = (v: number) => Math.round(v * 10) / 10;

function short(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${r1(value / 1e9)}G`;
  if (abs >= 1e6) return `${r1(value / 1e6)}M`;
  if (abs >= 1e3) return `${r1(value / 1e3)}k`;
  return String(r1(value));
}

function panel(p: Panel, originX: number, originY: number, markAtS: number | null): string {
  const points = p.series.flatMap((s) => s.points);
  const maxT = Math.max(1, ...points.map(([t]) => t));
  const maxV = Math.max(1e-9, ...points.map(([, v]) => v)) * 1.1;
  const w = PANEL_W - PAD.left - PAD.right;
  const h = PANEL_H - PAD.top - PAD.bottom;
  const x = (t: number) => r1(originX + PAD.left + (t / maxT) * w);
  const y = (v: number) => r1(originY + PAD.top + h - (v / maxV) * h);
  const parts = [
    `<text x="${originX + PAD.left}" y="${originY + 18}" font-size="13" font-weight="bold">${escapeXml(p.title)} (${escapeXml(p.unit)})</text>`,
    `<rect x="${originX + PAD.left}" y="${originY + PAD.top}" width="${w}" height="${h}" fill="none" stroke="#ccc"/>`,
  ];
  for (const frac of [0, 0.5, 1]) {
    const v = maxV * frac;
    parts.push(
      `<text x="${originX + PAD.left - 4}" y="${y(v) + 4}" font-size="10" text-anchor="end">${short(v)}</text>`,
    );
  }
  parts.push(
    `<text x="${x(maxT)}" y="${originY + PANEL_H - 8}" font-size="10" text-anchor="end">${Math.round(maxT)} s</text>`,
  );
  if (markAtS !== null) {
    parts.push(
      `<line x1="${x(markAtS)}" y1="${originY + PAD.top}" x2="${x(markAtS)}" y2="${originY + PAD.top + h}" stroke="#999" stroke-dasharray="4 3"/>`,
    );
  }
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const path = s.points.map(([t, v]) => `${x(t)},${y(v)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${path}"/>`);
    if (p.series.length > 1) {
      parts.push(
        `<text x="${originX + PAD.left + 6 + i * 110}" y="${originY + PAD.top + 12}" font-size="10" fill="${color}">${escapeXml(s.label)}</text>`,
      );
    }
  });
  return parts.join('\n');
}

/** Panels in two columns; a dashed vertical line marks the restart. */
export function soakChart(title: string, panels: Panel[], restartAtS: number | null): string {
  const rows = Math.ceil(panels.length / COLUMNS);
  const width = PANEL_W * COLUMNS;
  const height = 36 + rows * PANEL_H;
  const body = panels.map((p, i) =>
    panel(p, (i % COLUMNS) * PANEL_W, 36 + Math.floor(i / COLUMNS) * PANEL_H, restartAtS),
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
