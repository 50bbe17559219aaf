// Builds one JavaScript operator into a WebAssembly component with ComponentizeJS.
//
//   node componentize.mjs SOURCE.js WORLD OUT.wasm
//
// SOURCE.js is an ES module exporting the world's interface objects (`processor`,
// `aggregator`, with `subtractor` for aggregate-with-subtract, or `joiner`); it may import other modules of this repository by relative
// path (the SDK at sdk/js/weir-sdk.js). All engine features that would need
// WASI (stdio, random, clocks, http, fetch-event) are disabled: the component
// imports only the weir:stream interfaces, and is a pure function of its input.
import { componentize } from '@bytecodealliance/componentize-js';
import { rename, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [source, world, output] = process.argv.slice(2);
if (!source || !world || !output || process.argv.length !== 5) {
  console.error('usage: node componentize.mjs SOURCE.js WORLD OUT.wasm');
  process.exit(2);
}

// ComponentizeJS lets the module import files under the current directory
// only, so work from the repository root.
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const sourcePath = relative(repo, resolve(source));
const outPath = resolve(output);
process.chdir(repo);

const { component } = await componentize({
  sourcePath,
  witPath: resolve(repo, 'wit'),
  worldName: world,
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});

const tmp = `${outPath}.tmp.${process.pid}`;
await writeFile(tmp, component);
await rename(tmp, outPath);
