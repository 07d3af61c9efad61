#!/usr/bin/env node
// A small CLI over @openzeppelin/merkle-tree (the version pinned in package.json), the
// independent implementation that tests/core/test_merkle.py and bench/merkle.py check
// ledger/core/merkle.py against. Leaf encoding is always tally-leaf-v1:
// ["string", "string", "address"]. JSON in on stdin (or a file), JSON out on stdout;
// errors go to stderr with exit status 1.
//
//   node scripts/oz_merkle.mjs dump   < values.json   StandardMerkleTree.of(values, enc).dump()
//   node scripts/oz_merkle.mjs dumps  < batches.json  the same for an array of value arrays
//   node scripts/oz_merkle.mjs proofs < values.json   {root, proofs: [getProof(i) for each value]}
//   node scripts/oz_merkle.mjs load   < dump.json     {root, length} of StandardMerkleTree.load(dump),
//        or an array of dumps (prints an array; a dump that fails to load gives {error})
//   node scripts/oz_merkle.mjs verify < query.json    true/false of StandardMerkleTree.verify;
//        query = {root, leafEncoding, value, proof}, or an array of them (prints an array)
//   node scripts/oz_merkle.mjs bench N                time to build N synthetic leaves + all proofs
//   node scripts/oz_merkle.mjs bench --values FILE    the same over the values in FILE
//        prints {leaves, build_seconds, proofs_seconds, total_seconds, root}

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const LEAF_ENCODING = ['string', 'string', 'address'];

function readJson(path) {
  return JSON.parse(readFileSync(path ?? 0, 'utf8'));
}

function print(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

function loadOne(dump, single = false) {
  try {
    const tree = StandardMerkleTree.load(dump);
    return { root: tree.root, length: tree.length };
  } catch (error) {
    if (single) throw error;
    return { error: error.message };
  }
}

function verifyOne(query) {
  return StandardMerkleTree.verify(query.root, query.leafEncoding ?? LEAF_ENCODING, query.value, query.proof);
}

// Deterministic synthetic values, shaped like real ones: a 59-character CIDv1, a polling
// unit code and a checksum-free lowercase address (OZ does not check EIP-55).
function syntheticValues(count) {
  const values = [];
  let state = 0x2566n;
  const next = () => {
    state = (state * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    return state.toString(16).padStart(16, '0');
  };
  for (let i = 0; i < count; i++) {
    const cid = 'bafyrei' + (next() + next() + next() + next()).slice(0, 52);
    const unit = `BKK_${(i % 33) + 1}-${String(i).padStart(4, '0')}`;
    const signer = '0x' + (next() + next() + next()).slice(0, 40);
    values.push([cid, unit, signer]);
  }
  return values;
}

function bench(values) {
  const started = performance.now();
  const tree = StandardMerkleTree.of(values, LEAF_ENCODING);
  const built = performance.now();
  for (let i = 0; i < values.length; i++) tree.getProof(i);
  const proved = performance.now();
  return {
    leaves: values.length,
    build_seconds: (built - started) / 1000,
    proofs_seconds: (proved - built) / 1000,
    total_seconds: (proved - started) / 1000,
    root: tree.root,
  };
}

function main(argv) {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dump':
      return print(StandardMerkleTree.of(readJson(rest[0]), LEAF_ENCODING).dump());
    case 'proofs': {
      const values = readJson(rest[0]);
      const tree = StandardMerkleTree.of(values, LEAF_ENCODING);
      return print({ root: tree.root, proofs: values.map((_, i) => tree.getProof(i)) });
    }
    case 'dumps':
      return print(readJson(rest[0]).map(values => StandardMerkleTree.of(values, LEAF_ENCODING).dump()));
    case 'load': {
      const input = readJson(rest[0]);
      return print(Array.isArray(input) ? input.map(dump => loadOne(dump)) : loadOne(input, true));
    }
    case 'verify': {
      const query = readJson(rest[0]);
      return print(Array.isArray(query) ? query.map(verifyOne) : verifyOne(query));
    }
    case 'bench': {
      if (rest[0] === '--values') return print(bench(readJson(rest[1])));
      const count = Number.parseInt(rest[0] ?? '100000', 10);
      if (!(count > 0)) throw new Error(`bench needs a positive leaf count, got ${rest[0]}`);
      return print(bench(syntheticValues(count)));
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}; use dump, dumps, proofs, load, verify or bench`);
  }
}

try {
  main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`oz_merkle: ${error.message}\n`);
  process.exit(1);
}
