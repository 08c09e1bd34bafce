// Preloaded with `node --import` by test/cli/startup.test.ts for the bundled CLI, beside
// load-recorder.mjs (whose hooks see ES modules only): appends to the file named by
// RXNAT_LOAD_LOG, one a line, every CommonJS require (built-ins as node:NAME, files as file
// URLs) and every script compiled with vm.Script (the CLI's command bundles, which
// src/cli/code-cache.ts compiles itself), as they happen (a test may kill the process at its
// first datagram).
import { appendFileSync } from 'node:fs';
import Module from 'node:module';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';

const log = process.env.RXNAT_LOAD_LOG;
if (log) {
  const record = (line) => appendFileSync(log, `${line}\n`);
  const load = Module._load;
  Module._load = function (request, parent, isMain) {
    if (Module.isBuiltin(request)) {
      record(request.startsWith('node:') ? request : `node:${request}`);
    } else {
      try {
        record(pathToFileURL(Module._resolveFilename(request, parent, isMain)).href);
      } catch {
        // not found: the load below throws it
      }
    }
    return load.call(this, request, parent, isMain);
  };
  const Script = vm.Script;
  vm.Script = class RecordedScript extends Script {
    constructor(code, options) {
      if (typeof options?.filename === 'string') record(pathToFileURL(options.filename).href);
      super(code, options);
    }
  };
}
