// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'bench/results/', 'docs/', '.stryker-tmp/', 'reports/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The core is pure rxjs composition: no sockets, no real clocks, no Promises.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['node:*', '../transport/*', '../protocols/*', '../testing/*'] }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'Promise', 'fetch', 'queueMicrotask'],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'use the scheduler: core time must be virtual in marble tests' },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'NewExpression[callee.name="Date"]', message: 'use the scheduler' },
        { selector: 'FunctionDeclaration[async=true], ArrowFunctionExpression[async=true]', message: 'no Promises in core' },
      ],
    },
  },
  {
    // The transport carries bytes, addresses and time (through a scheduler): no protocol, no
    // core, nothing above it. Its logger type is its own (transport/logger.ts).
    files: ['src/transport/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../protocols', '../protocols/*', '../core', '../core/*'], message: 'src/transport knows no protocol and no core: pass what it needs in as bytes, options or callbacks' },
            { group: ['../cli', '../cli/*', '../facade', '../facade/*', '../testing', '../testing/*', '../index.js', '../discover.js', '../parse-nat.js'], message: 'src/transport is the bottom layer: nothing above it' },
          ],
        },
      ],
    },
  },
);
