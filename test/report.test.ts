/** The HTML report: rendered in headless Chromium, its charts are drawn where and as long as they should be. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderReport, writeReport, type ReportInput } from '../src/report/html.js';
import { COLORS } from '../src/report/charts.js';
import { colorPixels, decodePng, type Image } from './helpers/png.js';
import type { SensitivityJson } from '../src/fisher/report.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-report-'));
const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);

const sens: SensitivityJson = {
  version: 1,
  model: 'toy.onnx',
  estimator: 'sampled',
  likelihood: 'categorical',
  samples: 100,
  foldBatchNorm: true,
  layers: Array.from({ length: 6 }, (_, i) => ({
    name: `conv${i}`,
    op: 'Conv',
    weight: { name: `w${i}`, count: 100 * (i + 1), min: -1, max: 1, fisherTrace: 10 ** (i - 2), stdError: null },
    activation: { name: `a${i}`, count: 10, min: 0, max: 2, fisherTrace: 10 ** (1 - i / 2), stdError: null },
  })),
};

/** Connected blobs (4-neighbour) of one color: pixel count and center of each. */
function blobs(img: Image, hex: string, tol = 6): { count: number; x: number; y: number }[] {
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const on = (x: number, y: number) => rgb.every((c, k) => Math.abs(img.rgba[(y * img.width + x) * 4 + k]! - c) <= tol);
  const seen = new Uint8Array(img.width * img.height);
  const out: { count: number; x: number; y: number }[] = [];
  for (let y0 = 0; y0 < img.height; y0++)
    for (let x0 = 0; x0 < img.width; x0++) {
      if (seen[y0 * img.width + x0] || !on(x0, y0)) continue;
      seen[y0 * img.width + x0] = 1;
      const stack = [[x0, y0]];
      let [count, sx, sy] = [0, 0, 0];
      while (stack.length) {
        const [x, y] = stack.pop()!;
        count++;
        sx += x!;
        sy += y!;
        for (const [u, v] of [[x! + 1, y!], [x! - 1, y!], [x!, y! + 1], [x!, y! - 1]] as const) {
          if (u < 0 || v < 0 || u >= img.width || v >= img.height || seen[v * img.width + u] || !on(u, v)) continue;
          seen[v * img.width + u] = 1;
          stack.push([u, v]);
        }
      }
      out.push({ count, x: sx / count, y: sy / count });
    }
  return out;
}

function screenshot(input: ReportInput, name: string) {
  const html = join(dir, `${name}.html`);
  const png = join(dir, `${name}.png`);
  writeReport(html, input);
  const r = spawnSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--screenshot=${png}`, '--window-size=1000,1600', `file://${html}`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (!existsSync(png)) throw new Error(`chromium wrote no screenshot: ${r.stderr}`);
  return decodePng(readFileSync(png));
}

t.test('Chromium is installed (.ci/run installs Debian chromium)', async (t) => {
  t.ok(chromium, 'chromium found');
});

t.test('sensitivity bars on a log scale and the Pareto frontier with its chosen point', { skip: !chromium && 'no chromium' }, async (t) => {
  const frontier = [2, 3, 4, 5, 6, 8].map((b) => ({ averageBits: b, bytes: b * 100, fit: 8 * 2 ** -b }));
  const img = screenshot({ sensitivity: sens, search: { config: { weights: { conv0: 4 } }, fit: 0.5, bytes: 400, averageBits: 4, frontier } }, 'a');
  const w = colorPixels(img, COLORS.weight);
  const a = colorPixels(img, COLORS.activation);
  t.ok(w.count > 2000 && a.count > 2000, `weight (${w.count}) and activation (${a.count}) bars drawn`);
  // Traces span 1e-2..1e3, so the axis covers 6 decades from 1e-3: the longest weight bar (1e3)
  // spans the whole axis and the longest activation bar (1e1) four sixths of it.
  t.equal(w.x0, a.x0, 'bars share their origin');
  t.ok(Math.abs((a.x1 - a.x0) / (w.x1 - w.x0) - 4 / 6) < 0.02, `activation/weight bar ratio ${((a.x1 - a.x0) / (w.x1 - w.x0)).toFixed(3)} ~ 4/6`);
  const g = colorPixels(img, COLORS.frontier);
  const red = colorPixels(img, COLORS.chosen);
  t.ok(g.count > 300, `frontier drawn (${g.count} px)`);
  t.ok(red.count > 40, `chosen point drawn (${red.count} px)`);
  t.ok(red.y0 > w.y1, 'the frontier chart is below the bars');
  // the chosen point (4 bits) sits between the frontier's x extremes (2 and 8 bits): a third of the way
  const fx = (red.x0 + red.x1) / 2;
  t.ok(Math.abs((fx - g.x0) / (g.x1 - g.x0) - 1 / 3) < 0.05, `chosen point at ${((fx - g.x0) / (g.x1 - g.x0)).toFixed(3)} of the frontier's width`);
});

t.test('validation scatter and compression curves', { skip: !chromium && 'no chromium' }, async (t) => {
  const configs = Array.from({ length: 20 }, (_, i) => ({ fit: 10 ** (i / 5 - 2), value: 0.9 - i * 0.01 }));
  const curves = {
    metric: 'accuracy',
    curves: [
      { name: 'FITCompress', points: [{ compression: 0.25, value: 0.9 }, { compression: 0.1, value: 0.88 }] },
      { name: 'magnitude', points: [{ compression: 0.25, value: 0.89 }, { compression: 0.1, value: 0.8 }] },
    ],
  };
  const img = screenshot({ sensitivity: sens, validation: { metric: 'accuracy', float: 0.91, spearman: -1, kendall: -1, configs }, curves }, 'b');
  const p = colorPixels(img, COLORS.point);
  t.ok(p.count > 20 * 30, `20 scatter points drawn (${p.count} px)`);
  // accuracy falls as FIT grows: the purple points run from top left to bottom right
  t.ok(p.x1 - p.x0 > 300 && p.y1 - p.y0 > 150, 'points spread over the chart');
  // Orientation, from the 20 drawn circles (r = 4; the legend's 10 x 10 square of the same color is
  // the one larger blob, left out): sorted by x, their y grows, so the leftmost point (lowest FIT,
  // accuracy 0.9) is the highest on screen and the rightmost (highest FIT, 0.71) the lowest.
  const dots = blobs(img, COLORS.point).filter((b) => b.count < 64).sort((a, b) => a.x - b.x);
  t.equal(dots.length, 20, `20 circles found (${dots.map((d) => d.count).join(' ')} px)`);
  const [first, last] = [dots[0]!, dots.at(-1)!];
  t.ok(last.x - first.x > 300 && last.y - first.y > 150, `points spread from (${first.x.toFixed(0)}, ${first.y.toFixed(0)}) to (${last.x.toFixed(0)}, ${last.y.toFixed(0)})`);
  t.ok(first.y < last.y, `leftmost point at y ${first.y.toFixed(1)} above the rightmost at y ${last.y.toFixed(1)}`);
  t.ok(dots.every((d, i) => i === 0 || (d.x > dots[i - 1]!.x && d.y > dots[i - 1]!.y)), 'top left to bottom right: y grows with x at every point');
  const c1 = colorPixels(img, COLORS.chosen);
  const c2 = colorPixels(img, COLORS.baseline[0]);
  t.ok(c1.count > 100 && c2.count > 100, 'both curves drawn');
  t.ok(c1.y0 > p.y1 && c2.y0 > p.y1, 'the curves chart is below the scatter');
});

t.test('the HTML is self-contained and lists every layer', async (t) => {
  const html = renderReport({ sensitivity: sens });
  t.notMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'no script, no network');
  t.equal(html.match(/class="bar-weight"/g)?.length, 6);
  t.equal(html.match(/class="bar-activation"/g)?.length, 6);
  t.match(html, /conv5<\/td><td>Conv<\/td><td>600<\/td><td>1000<\/td>/);
  t.throws(() => renderReport({ sensitivity: { version: 2 } as unknown as SensitivityJson }), { code: 'ERR_INVALID_INPUT', message: /version 1/ });
});

t.test('onnx-fit report writes the file atomically and names a bad input file', async (t) => {
  const s = join(dir, 's.json');
  writeFileSync(s, JSON.stringify(sens));
  const out = join(dir, 'out.html');
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', cli, 'report', ...args], { encoding: 'utf8' });
  let r = run('--sensitivity', s, '--out', out);
  t.equal(r.status, 0, r.stderr);
  t.match(readFileSync(out, 'utf8'), /<svg id="sensitivity-chart"/);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{ not json');
  const before = readFileSync(out, 'utf8');
  r = run('--sensitivity', bad, '--out', out);
  t.equal(r.status, 1);
  t.match(r.stderr, /bad\.json is not valid JSON/);
  t.match(r.stderr, /ERR_INVALID_INPUT/);
  t.equal(readFileSync(out, 'utf8'), before, 'the existing report is untouched');
  t.notOk(readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp file left');
});
