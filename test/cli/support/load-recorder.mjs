// Preloaded with `node --import` by test/cli/startup.test.ts: records the URL of every module
// the process loads (one a line) in the file named by RXNAT_LOAD_LOG.
import { register } from 'node:module';

register('./load-hooks.mjs', import.meta.url, { data: { file: process.env.RXNAT_LOAD_LOG } });
