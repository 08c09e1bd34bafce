// Mutation testing of src/core with StrykerJS: `npm run mutate` (see docs/mutation.md).
// Narrow it with `npm run mutate -- --mutate src/core/session.ts`.
//
// Runner: the tap runner, which runs each test file as its own `node --import tsx` process and
// records which mutants each file reaches, so a mutant runs only the files that cover it (and
// stops at the first failing file). The TypeScript checker rejects mutants that do not compile
// (reported as "CompileError", never "Survived"): tsx only strips types, so without the checker a
// type-breaking mutant could pass the tests. It checks tsconfig.stryker.json (src/core and what it
// imports), not the tests, so a type error in a test being written elsewhere does not stop a run.
import { readdirSync } from 'node:fs';

// Test files to leave out of the pass (none: every core and marble test runs).
const excluded = new Set([]);

const testFiles = ['marbles', 'test/core']
  .flatMap((dir) =>
    readdirSync(dir)
      .filter((name) => name.endsWith('.test.ts'))
      .sort()
      .map((name) => `${dir}/${name}`),
  )
  .filter((file) => !excluded.has(file));

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: ['src/core/**/*.ts'],
  testRunner: 'tap',
  tap: {
    testFiles,
    nodeArgs: ['--import', 'tsx', '--test-reporter=tap', '-r', '{{hookFile}}', '{{testFile}}'],
    forceBail: true,
  },
  coverageAnalysis: 'perTest',
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.stryker.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  // 2 cores: two test runners (and two checkers) at most.
  concurrency: 2,
  // A mutant's time limit is timeoutFactor × (its test files' own test time) + timeoutMS + the
  // dry run's process overhead. The tap runner starts one node + tsx process per test file, and
  // that start-up (about 1.5 s a file, 2/3 of a run) is counted only once, unscaled; with other
  // work on the 2 cores a mutant that runs every file took 2-3 times its dry-run time, and with
  // timeoutMS 15000 some mutants that survive were reported as "Timeout". 60 s leaves room
  // for that; a mutant that really hangs costs about 2 minutes.
  timeoutFactor: 4,
  timeoutMS: 60000,
  ignorePatterns: ['dist', 'build', 'docs/api', 'bench/results', 'tmp', 'tmp-probe'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  tempDirName: '.stryker-tmp',
};
