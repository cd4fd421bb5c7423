/*
 * The preamble of every module file of neuro_core, included as its first line: the compiler
 * directives start from their defaults, one time scale for all modules, no implicit nets (a
 * misspelt signal is an error, not a new wire), then the shared macros. Deliberately without
 * an include guard: each file ends with `resetall and includes this again.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "pn_macros.vh"
