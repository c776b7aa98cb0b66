#!/usr/bin/env node
/**
 * The whole `tensorseal` CLI: a thin shell over the library. Each command's flags and help live in
 * commands/*.ts, its implementation in actions/*.ts (loaded only when it runs); errors become
 * exit codes in run.ts. Users reach it through bin.ts, which runs the most used commands from
 * one-file bundles of their own (fast/*.ts) and everything else from here.
 */
import { buildProgram } from "./program.js";
import { runCli } from "./run.js";

runCli(buildProgram);
