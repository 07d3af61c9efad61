#!/usr/bin/env node
// An offline js-ipfs daemon on loopback, used as an independent IPFS peer in tests.
//
// Usage: node scripts/ipfs_peer.mjs REPO_DIR
//
// REPO_DIR is created if missing and holds the whole js-ipfs repo; nothing is written to
// ~/.jsipfs. The daemon binds its HTTP RPC API to 127.0.0.1 on a free port, runs offline
// (no swarm, no bootstrap, no MDNS, no preload, no gateway, no gRPC) and, once it is ready,
// prints exactly one line to stdout:
//
//     TALLY_IPFS_API http://127.0.0.1:PORT
//
// It stops cleanly on SIGTERM, SIGINT or when stdin closes (so the parent dying stops it).

// js-ipfs 0.66 pulls in packages that call Promise.withResolvers, which Node 20 lacks.
// Install the polyfill before anything from node_modules is loaded (hence the dynamic
// import below: static imports would be evaluated before this line).
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}

import fs from 'node:fs'
import path from 'node:path'

const repoArgument = process.argv[2]
if (!repoArgument) {
  process.stderr.write('usage: node scripts/ipfs_peer.mjs REPO_DIR\n')
  process.exit(2)
}
const repoPath = path.resolve(repoArgument)
fs.mkdirSync(repoPath, { recursive: true })

// Belt and braces: tools that fall back to IPFS_PATH or ~/.jsipfs see the temp repo.
process.env.IPFS_PATH = repoPath

const { Daemon } = await import('ipfs-daemon')

const daemon = new Daemon({
  repo: repoPath,
  offline: true,
  silent: true,
  start: true,
  preload: { enabled: false },
  init: { algorithm: 'Ed25519' },
  config: {
    Addresses: {
      API: '/ip4/127.0.0.1/tcp/0',
      Gateway: [],
      RPC: '',
      Swarm: [],
      Announce: [],
      NoAnnounce: [],
      Delegates: []
    },
    Bootstrap: [],
    Discovery: {
      MDNS: { Enabled: false },
      webRTCStar: { Enabled: false }
    },
    Pubsub: { Enabled: false }
  }
})

let stopping = false
async function stop (code) {
  if (stopping) return
  stopping = true
  try {
    await daemon.stop()
  } catch (err) {
    process.stderr.write(`ipfs_peer: error while stopping: ${err && err.stack ? err.stack : err}\n`)
  }
  process.exit(code)
}

process.on('SIGTERM', () => { stop(0) })
process.on('SIGINT', () => { stop(0) })
process.stdin.on('end', () => { stop(0) })
process.stdin.on('error', () => { stop(0) })
process.stdin.resume()

try {
  await daemon.start()
} catch (err) {
  process.stderr.write(`ipfs_peer: js-ipfs failed to start: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
}

const servers = (daemon._httpApi && daemon._httpApi._apiServers) || []
if (servers.length === 0) {
  process.stderr.write('ipfs_peer: js-ipfs started without an HTTP API server\n')
  await stop(1)
} else {
  const info = servers[0].info
  process.stdout.write(`TALLY_IPFS_API http://127.0.0.1:${info.port}\n`)
}
