import type { InspectReport } from '../inspect.js';

const fmtDims = (d: (number | string | null)[]) => `[${d.map((x) => x ?? '?').join(', ')}]`;

export function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatInspect(r: InspectReport): string {
  const out: string[] = [];
  out.push(`Model ${r.model}: opset ${r.opset}${r.producer ? `, produced by ${r.producer}` : ''}`);
  out.push('', 'Inputs:');
  for (const i of r.inputs) out.push(`  ${i.name}  ${i.elemType} ${fmtDims(i.dims)}${i.prepared ? `  (run as ${fmtDims(i.prepared)})` : ''}`);
  out.push('', 'Outputs:');
  for (const o of r.outputs) out.push(`  ${o.name}  ${o.elemType} ${fmtDims(o.dims)}`);
  out.push('');
  if (r.unsupported.length) {
    out.push(`Unsupported ops (${r.unsupported.length} type(s)); the engine cannot run this model:`);
    out.push(table(r.unsupported.map((u) => [u.opType, String(u.count), u.nodes.slice(0, 4).join(', ') + (u.nodes.length > 4 ? ', ...' : '')]), ['op', 'count', 'nodes']));
    return out.join('\n');
  }
  const total = r.layers.reduce((a, l) => a + l.count, 0);
  out.push(`Quantizable layers: ${r.layers.length} (${total} weights)`);
  if (r.layers.length) out.push(table(r.layers.map((l) => [l.name, l.op, l.weight, String(l.count)]), ['layer', 'op', 'weight', 'count']));
  out.push('', 'Unsupported ops: none');
  if (r.agreement.length) {
    out.push('', 'Engine vs onnxruntime-node (same input):');
    out.push(table(r.agreement.map((a) => [a.output, fmtDims(a.dims), a.maxAbsDiff.toExponential(2), a.maxRelDiff.toExponential(2)]), ['output', 'dims', 'maxAbsDiff', 'maxRelDiff']));
  }
  return out.join('\n');
}
