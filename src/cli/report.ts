/** `onnx-fit report`: the self-contained HTML report from the JSON files the other commands write. */
import type { Command } from 'commander';
import { InvalidInputError } from '../errors.js';
import { writeReport, type ReportInput } from '../report/html.js';
import { readJsonFile } from './options.js';

interface ReportCliOptions {
  sensitivity: string;
  search?: string;
  validation?: string;
  curves?: string;
  out: string;
  title?: string;
}

export function runReport(o: ReportCliOptions): void {
  const input: ReportInput = { sensitivity: readJsonFile(o.sensitivity, 'sensitivity JSON') as ReportInput['sensitivity'] };
  if (o.search) input.search = readJsonFile(o.search, 'search JSON') as ReportInput['search'];
  if (o.validation) input.validation = readJsonFile(o.validation, 'validation JSON') as ReportInput['validation'];
  if (o.curves) input.curves = readJsonFile(o.curves, 'compression curves JSON') as ReportInput['curves'];
  if (o.title) input.title = o.title;
  try {
    writeReport(o.out, input);
  } catch (e) {
    if (e instanceof InvalidInputError) e.message = `${e.message} (from ${[o.sensitivity, o.search, o.validation, o.curves].filter(Boolean).join(', ')})`;
    throw e;
  }
  process.stderr.write(`onnx-fit: wrote ${o.out}\n`);
}

export function registerReport(p: Command): void {
  p.command('report')
    .description('write one self-contained HTML file: sensitivity bars, Pareto frontier, validation scatter, compression curves')
    .requiredOption('--sensitivity <file>', 'sensitivity JSON (onnx-fit sensitivity --json)')
    .option('--search <file>', 'search JSON (onnx-fit search --json): frontier and chosen point')
    .option('--validation <file>', 'validation JSON (onnx-fit validate --json): FIT against measured accuracy')
    .option('--curves <file>', 'compression curves JSON (onnx-fit compress --targets ... --json)')
    .option('--title <text>', 'page title')
    .requiredOption('--out <file>', 'the HTML file to write')
    .action(runReport);
}
