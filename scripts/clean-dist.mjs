#!/usr/bin/env node
// Removes dist/ before `npm pack` / `npm publish` rebuild it (the prepack script), so the
// tarball never carries output of a source file that has since been renamed or deleted: tsc
// does not remove what it no longer emits, and such a file's source map would point at a
// source the package does not ship.
import { rmSync } from 'node:fs';
import { join } from 'node:path';

rmSync(join(import.meta.dirname, '..', 'dist'), { recursive: true, force: true });
