/** Runs the onnx-fit command from the sources (tsx), as a user would. */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const cliPath = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** onnx-fit ARGS, waiting for it to exit. */
export const runCli = (...args: string[]): SpawnSyncReturns<string> => spawnSync(process.execPath, ['--import', 'tsx', cliPath, ...args], { encoding: 'utf8' });

/** The same, without blocking: several runs can go side by side. */
export const runCliAsync = (...args: string[]): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
