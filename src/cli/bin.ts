#!/usr/bin/env node
/**
 * Entry point of the `sledlog` executable.
 */
import { main } from './main.js'

const code = await main(process.argv.slice(2))
// A long-running command (node) keeps the process alive itself; others end here.
if (code !== 0) process.exit(code)
