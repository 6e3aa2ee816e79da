// A horizontal bar chart of ratios as SVG, rendered to PNG with resvg (a prebuilt rasterizer from
// npm), so benchmark results can be looked at, not only read.
import { Resvg } from '@resvg/resvg-js';

export interface Bar {
  label: string;
  ratio: number;
  /** The bar this ratio must reach, drawn as a tick. */
  floor?: number;
}

const escape = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function barChartPng(title: string, bars: readonly Bar[]): Buffer {
  const width = 900;
  const rowHeight = 34;
  const left = 330;
  const plot = width - left - 60;
  const height = 70 + bars.length * rowHeight;
  const max = Math.max(1, ...bars.map((b) => Math.max(b.ratio, b.floor ?? 0)));
  const x = (ratio: number) => left + (ratio / max) * plot;
  const rows = bars.map((bar, i) => {
    const y = 50 + i * rowHeight;
    const met = bar.floor === undefined || bar.ratio >= bar.floor;
    const floor =
      bar.floor === undefined
        ? ''
        : `<line x1="${x(bar.floor)}" x2="${x(bar.floor)}" y1="${y - 2}" y2="${y + 24}" stroke="#222" stroke-width="2" stroke-dasharray="3 2"/>`;
    return `<text x="${left - 10}" y="${y + 16}" text-anchor="end" font-size="13">${escape(bar.label)}</text>
<rect x="${left}" y="${y}" width="${Math.max(1, x(bar.ratio) - left)}" height="22" fill="${met ? '#3a7d44' : '#c0392b'}"/>
<text x="${x(bar.ratio) + 6}" y="${y + 16}" font-size="12">${bar.ratio.toFixed(2)}</text>${floor}`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="28" font-size="16" font-weight="bold">${escape(title)}</text>
<line x1="${x(1)}" x2="${x(1)}" y1="40" y2="${height - 10}" stroke="#999" stroke-dasharray="4 3"/>
${rows.join('\n')}
</svg>`;
  return new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } })
    .render()
    .asPng();
}
