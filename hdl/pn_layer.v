/*

pynq-neuro: one time-delay layer on GROUPS x LANES processing elements

Input frames t = 0 .. FRAMES_USED-1 of every digit are handled in order (the layer counts
them itself). For frame t:

  event phase      Every group pops its events (c_local, a) from the input frame buffer;
                   for each active tap k = t - tau*STRIDE (tau < FRAMES_EMITTED, increasing
                   tau) it reads the index entry k*LOCAL_CHANNELS + c_local = {count, base},
                   then the synapse words base .. base+count-1, one per cycle (a tap with
                   count 0, or an event without active taps, still takes one cycle); every
                   lane j with a valid entry {code, i} adds (2*code+1)*a to its partial
                   accumulator [slot(tau)][i] of this group. Cycles: 2 + max over groups of
                   the group's operations, the input frame is released in the last one.
  threshold phase  When output frame tau = (t - TAPS + 1)/STRIDE completes and the output
                   is free (wr_ready): one cycle to start, then one local index i per cycle
                   through a pipeline: every lane reads (and clears) the partial
                   accumulators [slot(tau)][i] of all groups at once (registered), adds
                   them in an adder tree, compares the total with the thresholds (hidden
                   layer: LEVELS comparators give the activation) or adds the bias
                   (classifier), and writes the LANES results to outputs i*LANES + j
                   (wr_en, wr_base = i*LANES); wr_done comes with the last write, LOCALS + 4
                   (THRESHOLD_LATENCY) cycles after the start. The layer is busy for
                   LOCALS + 1 cycles: the next event phase overlaps the last three pipeline
                   stages (they no longer touch the partial accumulators); a threshold phase
                   starts only when the pipeline is empty.

Pipeline of a group during the event phase (one operation per cycle, no bubbles):

  select   event (popped in this cycle, combinational from the frame buffer) or next tap
           of the current event -> index RAM read
  fetch    index entry {count, base} -> synapse RAM reads base .. base+count-1
  apply    synapse word -> per lane: product, read-modify-write of the partial
           accumulator (distributed RAM, asynchronous read)

Memories (never reset) have a load write port and are initialised from
MEM_PREFIX + "syn_g<g>.mem", "idx_g<g>.mem", "par.mem" (all zero when MEM_PREFIX is "").
After rst the partial accumulators are cleared, one address per cycle (busy stays high).

*/

`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "pn_macros.vh"

module pn_layer #
(
    // input units per frame
    parameter IN_CHANNELS = 28,
    // output units per frame
    parameter OUT_CHANNELS = 10,
    // consecutive input frames seen by one output frame
    parameter TAPS = 28,
    // input frames between two output frames
    parameter STRIDE = 1,
    // input frames of the layer
    parameter IN_FRAMES = 28,
    // input frames handled per digit
    parameter FRAMES_USED = 28,
    // output frames produced per digit
    parameter FRAMES_EMITTED = 1,
    // width of a weight code (the weight is 2*code+1)
    parameter WEIGHT_BITS = 2,
    // output activation width of a hidden layer (0 for the classifier)
    parameter ACT_BITS = 0,
    // event groups (input channel c is in group c mod GROUPS)
    parameter GROUPS = 1,
    // lanes (output o is on lane o mod LANES)
    parameter LANES = 1,
    // two's-complement width of accumulators, thresholds and biases
    parameter ACC_BITS = 16,
    // words per synapse RAM
    parameter SYNAPSE_DEPTH = 784,
    // width of a column's word count
    parameter COUNT_BITS = 1,
    // bits of an input activation (unsigned)
    parameter IN_BITS = 8,
    // 1: the classifier (bias and logits), 0: a hidden layer (thresholds)
    parameter IS_CLASSIFIER = 1,
    // path prefix of the memory images ("dir/mem/L0_"), "" for zeroed memories
    parameter MEM_PREFIX = "",
    // width of load_data
    parameter LOAD_BITS = 160,
    // width of wr_base
    parameter BASE_BITS = 16,
    // width of a local channel index (of ceil(IN_CHANNELS / GROUPS)); keep the default
    parameter CH_BITS = ((IN_CHANNELS + GROUPS - 1) / GROUPS > 1) ?
        $clog2((IN_CHANNELS + GROUPS - 1) / GROUPS) : 1,
    // width of one output (activation or logit); keep the default
    parameter OUT_BITS = IS_CLASSIFIER ? ACC_BITS : ACT_BITS
)
(
    input  wire                        clk,
    input  wire                        rst,

    /*
     * Input frame buffer (events)
     */
    input  wire                        rd_frame_valid,
    input  wire [GROUPS-1:0]           ev_valid,
    input  wire [GROUPS*CH_BITS-1:0]   ev_channel,
    input  wire [GROUPS*IN_BITS-1:0]   ev_value,
    output wire [GROUPS-1:0]           ev_pop,
    output wire                        rd_release,

    /*
     * Output: next frame buffer (hidden) or argmax (classifier)
     */
    input  wire                        wr_ready,
    output wire                        wr_en,
    output wire [BASE_BITS-1:0]        wr_base,
    output wire [LANES*OUT_BITS-1:0]   wr_data,
    output wire                        wr_done,

    /*
     * Memory load port
     */
    input  wire                        load_we,
    input  wire [1:0]                  load_kind,
    input  wire [7:0]                  load_bank,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [15:0]                 load_addr,
    input  wire [LOAD_BITS-1:0]        load_data,
    /* verilator lint_on UNUSEDSIGNAL */

    /*
     * Status
     */
    output wire                        busy
);

// limits of the core and the derived fields of a layer
`include "pn_limits.vh"

// the fields that follow from the others (the compiler writes the same into the artifact)
localparam integer OUT_FRAMES = pn_out_frames(IN_FRAMES, TAPS, STRIDE);
localparam integer LOCALS = pn_locals(OUT_CHANNELS, LANES);
localparam integer LOCAL_CHANNELS = pn_local_channels(IN_CHANNELS, GROUPS);
localparam integer LOCAL_BITS = pn_local_bits(OUT_CHANNELS, LANES);
localparam integer ENTRY_BITS = pn_entry_bits(OUT_CHANNELS, LANES, WEIGHT_BITS);
localparam integer WORD_BITS = LANES * ENTRY_BITS;
localparam integer LEVELS = pn_levels(ACT_BITS, IS_CLASSIFIER);
localparam integer PARAM_BITS = LEVELS * ACC_BITS;
localparam integer ADDR_BITS = pn_index_width(SYNAPSE_DEPTH);
localparam integer INDEX_BITS = COUNT_BITS + ADDR_BITS;
localparam integer INDEX_DEPTH = TAPS * LOCAL_CHANNELS;
localparam integer PAR_WIDTH = LANES * PARAM_BITS;

// parameter checks: a layer that cannot work stops the simulation at time 0 and the synthesis
// with the message
initial begin
    if (WEIGHT_BITS < 1 || WEIGHT_BITS > LIMIT_MAX_WEIGHT_BITS ||
            IN_BITS < 1 || IN_BITS > LIMIT_MAX_INPUT_BITS)
        `PN_STOP(("pn_layer: WEIGHT_BITS = %0d, IN_BITS = %0d; the layer takes 1..%0d and 1..%0d",
                  WEIGHT_BITS, IN_BITS, LIMIT_MAX_WEIGHT_BITS, LIMIT_MAX_INPUT_BITS))
    if (IS_CLASSIFIER ? (ACT_BITS != 0) : (ACT_BITS < 1 || ACT_BITS > LIMIT_MAX_ACT_BITS))
        `PN_STOP(("pn_layer: ACT_BITS = %0d (IS_CLASSIFIER = %0d); hidden layers take 1..%0d, the classifier 0",
                  ACT_BITS, IS_CLASSIFIER, LIMIT_MAX_ACT_BITS))
    if (TAPS < 1 || STRIDE < 1 || TAPS > IN_FRAMES ||
            FRAMES_USED < 1 || FRAMES_USED > IN_FRAMES || FRAMES_EMITTED < 1 ||
            FRAMES_EMITTED > OUT_FRAMES)
        `PN_STOP(("pn_layer: frames: IN_FRAMES = %0d, TAPS = %0d, STRIDE = %0d (%0d output frames), FRAMES_USED = %0d, FRAMES_EMITTED = %0d",
                  IN_FRAMES, TAPS, STRIDE, OUT_FRAMES, FRAMES_USED, FRAMES_EMITTED))
    if (GROUPS < 1 || GROUPS > IN_CHANNELS || GROUPS > LIMIT_MAX_GROUPS || LANES < 1 ||
            LANES > OUT_CHANNELS || OUT_CHANNELS > LIMIT_MAX_CHANNELS)
        `PN_STOP(("pn_layer: GROUPS = %0d (1..min(IN_CHANNELS = %0d, %0d)), LANES = %0d (1..OUT_CHANNELS = %0d, at most %0d outputs)",
                  GROUPS, IN_CHANNELS, LIMIT_MAX_GROUPS, LANES, OUT_CHANNELS, LIMIT_MAX_CHANNELS))
    if (ACC_BITS < 2 || COUNT_BITS < 1)
        `PN_STOP(("pn_layer: ACC_BITS = %0d, COUNT_BITS = %0d; expected at least 2 and 1", ACC_BITS,
                  COUNT_BITS))
    if (SYNAPSE_DEPTH < 1 || SYNAPSE_DEPTH > LIMIT_MAX_DEPTH || INDEX_DEPTH > LIMIT_MAX_DEPTH ||
            LOCALS > LIMIT_MAX_DEPTH)
        `PN_STOP(("pn_layer: SYNAPSE_DEPTH = %0d, INDEX_DEPTH = %0d, LOCALS = %0d; the loader addresses %0d words",
                  SYNAPSE_DEPTH, INDEX_DEPTH, LOCALS, LIMIT_MAX_DEPTH))
    if (WORD_BITS > LOAD_BITS || INDEX_BITS > LOAD_BITS || PAR_WIDTH > LOAD_BITS ||
            LOAD_BITS > LIMIT_MAX_WORD_BITS)
        `PN_STOP(("pn_layer: memory words of %0d, %0d and %0d bits, LOAD_BITS = %0d (at most %0d)",
                  WORD_BITS, INDEX_BITS, PAR_WIDTH, LOAD_BITS, LIMIT_MAX_WORD_BITS))
    if (OUT_BITS != (IS_CLASSIFIER ? ACC_BITS : ACT_BITS) ||
            (LOCALS - 1) * LANES >= (1 << BASE_BITS))
        `PN_STOP(("pn_layer: OUT_BITS = %0d, BASE_BITS = %0d for %0d x %0d outputs", OUT_BITS,
                  BASE_BITS, LOCALS, LANES))
end

// partial accumulator slots: output frame tau uses slot tau mod SLOTS
localparam SLOTS = (TAPS + STRIDE - 1) / STRIDE;
// partial accumulator entries per group and lane
localparam ACC_DEPTH = SLOTS * LOCALS;
localparam ACC_ADDR_BITS = (ACC_DEPTH > 1) ? $clog2(ACC_DEPTH) : 1;
localparam IDX_ADDR_BITS = (INDEX_DEPTH > 1) ? $clog2(INDEX_DEPTH) : 1;
localparam LOC_BITS = (LOCALS > 1) ? $clog2(LOCALS) : 1;
localparam T_BITS = (FRAMES_USED > 1) ? $clog2(FRAMES_USED) : 1;
// first tap of a frame plus STRIDE (1 .. TAPS+STRIDE-1); below STRIDE: no active tap
localparam KP_BITS = $clog2(TAPS + STRIDE + 1);
// tap index times LOCAL_CHANNELS
localparam KB_BITS = $clog2(INDEX_DEPTH + 1) + 1;
// output frame index 0 .. FRAMES_EMITTED
localparam TAU_BITS = $clog2(FRAMES_EMITTED + 2);
// width of a product magnitude |2*code+1| * a
localparam MAG_BITS = WEIGHT_BITS + IN_BITS;
// 2..4-bit weights: each group forms the 2^(WEIGHT_BITS-1) odd multiples (2m+1)*a of its
// event value once and the lanes select one (a multiplexer instead of an adder per lane)
localparam SHARED_MULT = (WEIGHT_BITS >= 2 && WEIGHT_BITS <= 4);
localparam NMULT = SHARED_MULT ? (1 << (WEIGHT_BITS - 1)) : 1;
// the local index field (at least one bit wide)
localparam LB = (LOCAL_BITS > 0) ? LOCAL_BITS : 1;

// integer constants used at fixed widths
localparam integer C_STRIDE = STRIDE;
localparam integer C_K_LAST = TAPS + STRIDE - 1;
localparam integer C_K_JUMP = TAPS;
localparam integer C_KB_JUMP = (TAPS > STRIDE) ? (TAPS - STRIDE) * LOCAL_CHANNELS : 0;
localparam integer C_LC = LOCAL_CHANNELS;
localparam integer C_SLC = STRIDE * LOCAL_CHANNELS;
localparam integer C_EMIT = FRAMES_EMITTED;
localparam integer C_LOCALS = LOCALS;
localparam integer C_ACC_LAST = ACC_DEPTH - 1;
localparam integer C_USED_LAST = FRAMES_USED - 1;
localparam integer C_LOC_LAST = LOCALS - 1;
localparam integer C_LANES = LANES;

localparam HAVE_MEM = (MEM_PREFIX != "");

// states
localparam [2:0]
    STATE_FLUSH = 3'd0,
    STATE_IDLE = 3'd1,
    STATE_EVENT = 3'd2,
    STATE_TH_WAIT = 3'd3,
    STATE_TH_SUM = 3'd4;

// slot base of the next output frame (slot base = slot*LOCALS)
function [ACC_ADDR_BITS-1:0] next_sb;
    input [ACC_ADDR_BITS-1:0] sb;
    reg [ACC_ADDR_BITS:0] s;
    begin
        s = {1'b0, sb} + C_LOCALS[ACC_ADDR_BITS:0];
        if (s > C_ACC_LAST[ACC_ADDR_BITS:0]) begin
            next_sb = {ACC_ADDR_BITS{1'b0}};
        end else begin
            next_sb = s[ACC_ADDR_BITS-1:0];
        end
    end
endfunction

reg [2:0] state_reg = STATE_FLUSH, state_next;

// frame sequencing: frame t, its first active tap k0 (as k0 + STRIDE), k0*LOCAL_CHANNELS,
// the output frame tau0 of that tap and its slot base
reg [T_BITS-1:0] t_reg = {T_BITS{1'b0}}, t_next;
reg [KP_BITS-1:0] f_kp_reg = C_STRIDE[KP_BITS-1:0], f_kp_next;
reg [KB_BITS-1:0] f_kb_reg = {KB_BITS{1'b0}}, f_kb_next;
reg [TAU_BITS-1:0] f_tau_reg = {TAU_BITS{1'b0}}, f_tau_next;
reg [ACC_ADDR_BITS-1:0] f_sb_reg = {ACC_ADDR_BITS{1'b0}}, f_sb_next;

// threshold phase and flush counters
reg [LOC_BITS-1:0] th_i_reg = {LOC_BITS{1'b0}}, th_i_next;
reg [ACC_ADDR_BITS-1:0] th_addr_reg = {ACC_ADDR_BITS{1'b0}}, th_addr_next;
reg [ACC_ADDR_BITS-1:0] flush_reg = {ACC_ADDR_BITS{1'b0}}, flush_next;

// threshold pipeline: partial sums of all groups -> total -> output
reg [GROUPS*LANES*ACC_BITS-1:0] rdq_reg = {GROUPS*LANES*ACC_BITS{1'b0}}, rdq_next;
reg rdq_valid_reg = 1'b0, rdq_valid_next;
reg rdq_last_reg = 1'b0, rdq_last_next;
reg [LOC_BITS-1:0] rdq_i_reg = {LOC_BITS{1'b0}}, rdq_i_next;
reg [LANES*ACC_BITS-1:0] tot_reg = {LANES*ACC_BITS{1'b0}}, tot_next;
reg tot_valid_reg = 1'b0, tot_valid_next;
reg tot_last_reg = 1'b0, tot_last_next;
reg [LOC_BITS-1:0] tot_i_reg = {LOC_BITS{1'b0}}, tot_i_next;
reg [LANES*OUT_BITS-1:0] out_reg = {LANES*OUT_BITS{1'b0}}, out_next;
reg out_valid_reg = 1'b0, out_valid_next;
reg out_last_reg = 1'b0, out_last_next;
reg [BASE_BITS-1:0] out_base_reg = {BASE_BITS{1'b0}}, out_base_next;

// parameter RAM read port
wire [LANES*PARAM_BITS-1:0] par_q;
reg par_re;

// per group status and partial accumulator read data
wire [GROUPS-1:0] grp_busy;
wire [GROUPS*LANES*ACC_BITS-1:0] acc_rd;

// frame-level tap information
wire f_null = (f_kp_reg < C_STRIDE[KP_BITS-1:0]) || ({1'b0, f_tau_reg} >= C_EMIT[TAU_BITS:0]);
wire f_done = (f_kp_reg == C_K_LAST[KP_BITS-1:0]) && ({1'b0, f_tau_reg} < C_EMIT[TAU_BITS:0]);
wire [KP_BITS-1:0] f_k0 = f_kp_reg - C_STRIDE[KP_BITS-1:0];

// groups may take events: in the event phase, or in the cycle a frame arrives
wire phase_on = (state_reg == STATE_EVENT) || (state_reg == STATE_IDLE && rd_frame_valid);
wire ev_end = (state_reg == STATE_EVENT) && !(|grp_busy);
wire flush_on = (state_reg == STATE_FLUSH);
wire th_on = (state_reg == STATE_TH_SUM);

assign rd_release = ev_end;
assign wr_en = out_valid_reg;
assign wr_base = out_base_reg;
assign wr_data = out_reg;
assign wr_done = out_valid_reg && out_last_reg;
// the threshold pipeline (accumulator capture, adder tree, comparison) holds data
wire pipe_busy = rdq_valid_reg || tot_valid_reg || out_valid_reg;
assign busy = (state_reg != STATE_IDLE) || (t_reg != {T_BITS{1'b0}}) || pipe_busy;

/*
 * Event groups
 */
genvar g, j, pb;
generate
    for (g = 0; g < GROUPS; g = g + 1) begin : g_group
        localparam integer GC1 = 48 + (g % 10);
        localparam integer GC10 = 48 + ((g / 10) % 10);
        localparam integer GC100 = 48 + (g / 100);
        localparam integer C_G = g;

        // memory images "<MEM_PREFIX>syn_g<g>.mem" and "<MEM_PREFIX>idx_g<g>.mem" (the
        // shorter names are padded with leading zero bytes, which name no character)
        /* verilator lint_off WIDTH */
        localparam SYN_FILE = !HAVE_MEM ? "" :
            (g < 10) ? {MEM_PREFIX, "syn_g", GC1[7:0], ".mem"} :
            (g < 100) ? {MEM_PREFIX, "syn_g", GC10[7:0], GC1[7:0], ".mem"} :
            {MEM_PREFIX, "syn_g", GC100[7:0], GC10[7:0], GC1[7:0], ".mem"};
        localparam IDX_FILE = !HAVE_MEM ? "" :
            (g < 10) ? {MEM_PREFIX, "idx_g", GC1[7:0], ".mem"} :
            (g < 100) ? {MEM_PREFIX, "idx_g", GC10[7:0], GC1[7:0], ".mem"} :
            {MEM_PREFIX, "idx_g", GC100[7:0], GC10[7:0], GC1[7:0], ".mem"};
        /* verilator lint_on WIDTH */
        wire load_bank_hit = load_we && load_bank == C_G[7:0];

        // current event with taps left (next tap)
        reg cur_more_reg = 1'b0, cur_more_next;
        reg [CH_BITS-1:0] cur_ch_reg = {CH_BITS{1'b0}}, cur_ch_next;
        reg [IN_BITS-1:0] cur_val_reg = {IN_BITS{1'b0}}, cur_val_next;
        reg [KP_BITS-1:0] cur_k_reg = {KP_BITS{1'b0}}, cur_k_next;
        reg [KB_BITS-1:0] cur_kb_reg = {KB_BITS{1'b0}}, cur_kb_next;
        reg [TAU_BITS-1:0] cur_tau_reg = {TAU_BITS{1'b0}}, cur_tau_next;
        reg [ACC_ADDR_BITS-1:0] cur_sb_reg = {ACC_ADDR_BITS{1'b0}}, cur_sb_next;

        // fetch stage: one (event, tap) operation, index entry in idx_q
        reg b_valid_reg = 1'b0, b_valid_next;
        reg b_first_reg = 1'b0, b_first_next;
        reg b_null_reg = 1'b0, b_null_next;
        reg [IN_BITS-1:0] b_val_reg = {IN_BITS{1'b0}}, b_val_next;
        reg [ACC_ADDR_BITS-1:0] b_sb_reg = {ACC_ADDR_BITS{1'b0}}, b_sb_next;
        reg [ADDR_BITS-1:0] b_addr_reg = {ADDR_BITS{1'b0}}, b_addr_next;
        reg [COUNT_BITS-1:0] b_left_reg = {COUNT_BITS{1'b0}}, b_left_next;
        wire [INDEX_BITS-1:0] idx_q;

        // apply stage: synapse word in syn_q
        reg c_valid_reg = 1'b0, c_valid_next;
        /* verilator lint_off UNUSEDSIGNAL */ // only the shift-and-add products read it
        reg [IN_BITS-1:0] c_val_reg = {IN_BITS{1'b0}}, c_val_next;
        /* verilator lint_on UNUSEDSIGNAL */
        reg [ACC_ADDR_BITS-1:0] c_sb_reg = {ACC_ADDR_BITS{1'b0}}, c_sb_next;
        wire [WORD_BITS-1:0] syn_q;
        // odd multiples (2m+1)*c_val_reg, m < NMULT (SHARED_MULT)
        reg [NMULT*MAG_BITS-1:0] c_mult_reg = {NMULT*MAG_BITS{1'b0}};
        reg [NMULT*MAG_BITS-1:0] c_mult_next;
        /* verilator lint_off UNUSEDSIGNAL */
        reg [31:0] mult_full;
        /* verilator lint_on UNUSEDSIGNAL */
        integer m;

        // selection of the next operation
        reg sel_null;
        reg [CH_BITS-1:0] sel_ch;
        reg [IN_BITS-1:0] sel_val;
        reg [KP_BITS-1:0] sel_k;
        reg [KB_BITS-1:0] sel_kb;
        reg [TAU_BITS-1:0] sel_tau;
        reg [ACC_ADDR_BITS-1:0] sel_sb;
        reg load;
        /* verilator lint_off UNUSEDSIGNAL */
        reg [KB_BITS-1:0] idx_ra_full;
        /* verilator lint_on UNUSEDSIGNAL */
        reg [IDX_ADDR_BITS-1:0] idx_ra;
        reg idx_re;

        // fetch stage word
        wire [ADDR_BITS-1:0] idx_base = idx_q[ADDR_BITS-1:0];
        wire [COUNT_BITS-1:0] idx_count = idx_q[INDEX_BITS-1:ADDR_BITS];
        wire [ADDR_BITS-1:0] cur_addr = b_first_reg ? idx_base : b_addr_reg;
        wire [COUNT_BITS-1:0] cur_left = b_first_reg ? idx_count : b_left_reg;
        wire b_last;
        wire b_free = !b_valid_reg || b_last;
        wire syn_re = b_valid_reg && !b_null_reg && (cur_left != {COUNT_BITS{1'b0}});

        // the operation ends in this cycle (max(1, count) cycles per operation)
        if (COUNT_BITS > 1) begin : g_last
            assign b_last = b_null_reg || (cur_left[COUNT_BITS-1:1] == {(COUNT_BITS-1){1'b0}});
        end else begin : g_last1
            assign b_last = 1'b1;
        end

        assign ev_pop[g] = phase_on && b_free && !cur_more_reg;
        assign grp_busy[g] = b_valid_reg || cur_more_reg || ev_valid[g];

        always @* begin
            cur_more_next = cur_more_reg;
            cur_ch_next = cur_ch_reg;
            cur_val_next = cur_val_reg;
            cur_k_next = cur_k_reg;
            cur_kb_next = cur_kb_reg;
            cur_tau_next = cur_tau_reg;
            cur_sb_next = cur_sb_reg;

            b_valid_next = b_valid_reg;
            b_first_next = b_first_reg;
            b_null_next = b_null_reg;
            b_val_next = b_val_reg;
            b_sb_next = b_sb_reg;
            b_addr_next = b_addr_reg;
            b_left_next = b_left_reg;

            // the next operation: a tap of the current event, else a new event
            if (cur_more_reg) begin
                sel_null = 1'b0;
                sel_ch = cur_ch_reg;
                sel_val = cur_val_reg;
                sel_k = cur_k_reg;
                sel_kb = cur_kb_reg;
                sel_tau = cur_tau_reg;
                sel_sb = cur_sb_reg;
            end else begin
                sel_null = f_null;
                sel_ch = ev_channel[g*CH_BITS +: CH_BITS];
                sel_val = ev_value[g*IN_BITS +: IN_BITS];
                sel_k = f_k0;
                sel_kb = f_kb_reg;
                sel_tau = f_tau_reg;
                sel_sb = f_sb_reg;
            end

            load = phase_on && b_free && (cur_more_reg || ev_valid[g]);

            idx_ra_full = sel_kb + {{(KB_BITS-CH_BITS){1'b0}}, sel_ch};
            idx_ra = idx_ra_full[IDX_ADDR_BITS-1:0];
            idx_re = load && !sel_null;

            if (load) begin
                cur_more_next = !sel_null && (sel_k >= C_STRIDE[KP_BITS-1:0]) &&
                    ({1'b0, sel_tau} + 1'b1 < C_EMIT[TAU_BITS:0]);
                cur_ch_next = sel_ch;
                cur_val_next = sel_val;
                cur_k_next = sel_k - C_STRIDE[KP_BITS-1:0];
                cur_kb_next = sel_kb - C_SLC[KB_BITS-1:0];
                cur_tau_next = sel_tau + 1'b1;
                cur_sb_next = next_sb(sel_sb);
            end

            // fetch stage: next word of this operation, or the next operation
            if (b_valid_reg && !b_last) begin
                b_first_next = 1'b0;
                b_addr_next = cur_addr + 1'b1;
                b_left_next = cur_left - 1'b1;
            end else if (load) begin
                b_valid_next = 1'b1;
                b_first_next = 1'b1;
                b_null_next = sel_null;
                b_val_next = sel_val;
                b_sb_next = sel_sb;
            end else begin
                b_valid_next = 1'b0;
            end

            // apply stage
            c_valid_next = syn_re;
            c_val_next = b_val_reg;
            c_sb_next = b_sb_reg;
            for (m = 0; m < NMULT; m = m + 1) begin
                mult_full = (2*m + 1) * {{(32-IN_BITS){1'b0}}, b_val_reg};
                c_mult_next[m*MAG_BITS +: MAG_BITS] = mult_full[MAG_BITS-1:0];
            end
        end

        always @(posedge clk) begin
            cur_more_reg <= cur_more_next;
            cur_ch_reg <= cur_ch_next;
            cur_val_reg <= cur_val_next;
            cur_k_reg <= cur_k_next;
            cur_kb_reg <= cur_kb_next;
            cur_tau_reg <= cur_tau_next;
            cur_sb_reg <= cur_sb_next;
            b_valid_reg <= b_valid_next;
            b_first_reg <= b_first_next;
            b_null_reg <= b_null_next;
            b_val_reg <= b_val_next;
            b_sb_reg <= b_sb_next;
            b_addr_reg <= b_addr_next;
            b_left_reg <= b_left_next;
            c_valid_reg <= c_valid_next;
            c_val_reg <= c_val_next;
            c_sb_reg <= c_sb_next;
            c_mult_reg <= c_mult_next;

            if (rst) begin
                cur_more_reg <= 1'b0;
                b_valid_reg <= 1'b0;
                c_valid_reg <= 1'b0;
            end
        end

        // index RAM (read in the select stage) and synapse RAM (read in the fetch stage), both
        // written through the load port
        pn_ram #(.WIDTH(INDEX_BITS), .DEPTH(INDEX_DEPTH), .RAM_STYLE("auto"), .INIT_FILE(IDX_FILE))
        idx_ram_inst (.clk(clk), .wr_en(load_bank_hit && load_kind == 2'd1),
                      .wr_addr(load_addr[IDX_ADDR_BITS-1:0]), .wr_data(load_data[INDEX_BITS-1:0]),
                      .rd_en(idx_re), .rd_addr(idx_ra), .rd_data(idx_q));

        pn_ram #(.WIDTH(WORD_BITS), .DEPTH(SYNAPSE_DEPTH), .RAM_STYLE("block"),
                 .INIT_FILE(SYN_FILE))
        syn_ram_inst (.clk(clk), .wr_en(load_bank_hit && load_kind == 2'd0),
                      .wr_addr(load_addr[ADDR_BITS-1:0]), .wr_data(load_data[WORD_BITS-1:0]),
                      .rd_en(syn_re), .rd_addr(cur_addr), .rd_data(syn_q));

        /*
         * Lanes: partial accumulators of this group
         */
        for (j = 0; j < LANES; j = j + 1) begin : g_lane
            (* ram_style = "distributed" *)
            reg [ACC_BITS-1:0] acc_mem [0:ACC_DEPTH-1];

            integer k;
            initial begin
                for (k = 0; k < ACC_DEPTH; k = k + 1) begin
                    acc_mem[k] = {ACC_BITS{1'b0}};
                end
            end

            wire [ENTRY_BITS-1:0] entry = syn_q[j*ENTRY_BITS +: ENTRY_BITS];
            wire e_valid = entry[0];
            wire [LB-1:0] e_local;
            wire [WEIGHT_BITS-1:0] e_code = entry[ENTRY_BITS-1 -: WEIGHT_BITS];

            if (LOCAL_BITS > 0) begin : g_local
                assign e_local = entry[LB:1];
            end else begin : g_nolocal
                assign e_local = 1'b0;
            end

            // (2*code + 1) * a without a multiplier, in sign and magnitude: with s the sign
            // of the code, |2*code + 1| = 2*(code ^ s) + 1. For 2..4-bit codes the magnitude
            // is the group's multiple number (code ^ s); otherwise it is a plus a << (i+1)
            // for every set bit i of code ^ s (an adder tree of WEIGHT_BITS-1 adders). The
            // accumulator adds or subtracts it (one adder: xor and carry-in).
            wire sgn = e_code[WEIGHT_BITS-1];
            /* verilator lint_off UNUSEDSIGNAL */
            wire [WEIGHT_BITS-1:0] mag_code = e_code ^ {WEIGHT_BITS{sgn}};  // top bit is 0
            wire [MAG_BITS-1:0] mag;
            /* verilator lint_on UNUSEDSIGNAL */
            wire [ACC_BITS-1:0] mag_acc;

            if (SHARED_MULT) begin : g_shared
                assign mag = c_mult_reg[mag_code[WEIGHT_BITS-2:0]*MAG_BITS +: MAG_BITS];
            end else begin : g_shift_add
                wire [MAG_BITS-1:0] a_ext = {{(MAG_BITS-IN_BITS){1'b0}}, c_val_reg};
                wire [WEIGHT_BITS*MAG_BITS-1:0] terms;

                assign terms[MAG_BITS-1:0] = a_ext;
                for (pb = 1; pb < WEIGHT_BITS; pb = pb + 1) begin : g_term
                    assign terms[pb*MAG_BITS +: MAG_BITS] =
                        mag_code[pb-1] ? (a_ext << pb) : {MAG_BITS{1'b0}};
                end
                pn_adder_tree #(
                    .N(WEIGHT_BITS),
                    .WIDTH(MAG_BITS)
                )
                mag_sum_inst (
                    .in(terms),
                    .sum(mag)
                );
            end

            if (MAG_BITS >= ACC_BITS) begin : g_mag_trunc
                assign mag_acc = mag[ACC_BITS-1:0];
            end else begin : g_mag_ext
                assign mag_acc = {{(ACC_BITS-MAG_BITS){1'b0}}, mag};
            end

            /* verilator lint_off UNUSEDSIGNAL */
            wire [ACC_ADDR_BITS:0] mac_addr_full = {1'b0, c_sb_reg} + {{(ACC_ADDR_BITS+1-LB){1'b0}}, e_local};
            /* verilator lint_on UNUSEDSIGNAL */
            wire [ACC_ADDR_BITS-1:0] mac_addr = mac_addr_full[ACC_ADDR_BITS-1:0];

            // one address for the read-modify-write, the clear and the flush
            wire [ACC_ADDR_BITS-1:0] acc_addr = flush_on ? flush_reg : (th_on ? th_addr_reg : mac_addr);
            wire [ACC_BITS-1:0] acc_q = acc_mem[acc_addr];
            wire clear = flush_on || th_on;
            wire acc_we = clear || (c_valid_reg && e_valid);
            // acc +- magnitude in one adder (xor and carry-in); a clear writes
            // acc + ~acc + 1 = 0 through the same adder
            wire [ACC_BITS-1:0] op_mag = clear ? ~acc_q : (mag_acc ^ {ACC_BITS{sgn}});
            wire [ACC_BITS-1:0] op_cin = {{(ACC_BITS-1){1'b0}}, sgn || clear};
            wire [ACC_BITS-1:0] acc_d = acc_q + op_mag + op_cin;

            always @(posedge clk) begin
                if (acc_we) begin
                    acc_mem[acc_addr] <= acc_d;
                end
            end

            assign acc_rd[(g*LANES + j)*ACC_BITS +: ACC_BITS] = acc_q;
        end
    end
endgenerate

/*
 * Parameter RAM (thresholds or biases of the LANES outputs of a local index)
 */
pn_ram #(.WIDTH(LANES*PARAM_BITS), .DEPTH(LOCALS), .RAM_STYLE("auto"),
         .INIT_FILE(HAVE_MEM ? {MEM_PREFIX, "par.mem"} : ""))
par_ram_inst (.clk(clk), .wr_en(load_we && load_kind == 2'd2), .wr_addr(load_addr[LOC_BITS-1:0]),
              .wr_data(load_data[LANES*PARAM_BITS-1:0]), .rd_en(par_re), .rd_addr(rdq_i_reg),
              .rd_data(par_q));

/*
 * Threshold pipeline: per lane, the sum of the captured partial accumulators of all groups
 */
wire [LANES*ACC_BITS-1:0] lane_sum;

generate
    for (j = 0; j < LANES; j = j + 1) begin : g_lane_sum
        wire [GROUPS*ACC_BITS-1:0] col;

        for (g = 0; g < GROUPS; g = g + 1) begin : g_col
            assign col[g*ACC_BITS +: ACC_BITS] = rdq_reg[(g*LANES + j)*ACC_BITS +: ACC_BITS];
        end

        pn_adder_tree #(
            .N(GROUPS),
            .WIDTH(ACC_BITS)
        )
        group_sum_inst (
            .in(col),
            .sum(lane_sum[j*ACC_BITS +: ACC_BITS])
        );
    end
endgenerate

/*
 * Sequencing and threshold pipeline
 */
integer ln, v, cnt;
reg [ACC_BITS-1:0] lane_tot;
reg [ACC_BITS-1:0] lane_par;
/* verilator lint_off UNUSEDSIGNAL */
reg [ACC_BITS+OUT_BITS-1:0] logit_full;
reg [BASE_BITS+LOC_BITS-1:0] base_full;
/* verilator lint_on UNUSEDSIGNAL */

always @* begin
    state_next = state_reg;
    t_next = t_reg;
    f_kp_next = f_kp_reg;
    f_kb_next = f_kb_reg;
    f_tau_next = f_tau_reg;
    f_sb_next = f_sb_reg;
    th_i_next = th_i_reg;
    th_addr_next = th_addr_reg;
    flush_next = flush_reg;
    rdq_next = rdq_reg;
    rdq_valid_next = 1'b0;
    rdq_last_next = rdq_last_reg;
    rdq_i_next = rdq_i_reg;
    tot_next = tot_reg;
    tot_valid_next = 1'b0;
    tot_last_next = tot_last_reg;
    tot_i_next = tot_i_reg;
    out_next = out_reg;
    out_valid_next = 1'b0;
    out_last_next = out_last_reg;
    out_base_next = out_base_reg;
    par_re = 1'b0;
    lane_tot = {ACC_BITS{1'b0}};
    lane_par = {ACC_BITS{1'b0}};
    logit_full = {ACC_BITS+OUT_BITS{1'b0}};
    base_full = {BASE_BITS+LOC_BITS{1'b0}};
    cnt = 0;

    case (state_reg)
        STATE_FLUSH: begin
            flush_next = flush_reg + 1'b1;
            if (flush_reg == C_ACC_LAST[ACC_ADDR_BITS-1:0]) begin
                state_next = STATE_IDLE;
            end
        end
        STATE_IDLE: begin
            if (rd_frame_valid) begin
                state_next = STATE_EVENT;
            end
        end
        STATE_EVENT: begin
            if (ev_end) begin
                if (f_done) begin
                    state_next = STATE_TH_WAIT;
                end else begin
                    state_next = STATE_IDLE;
                end
            end
        end
        STATE_TH_WAIT: begin
            if (wr_ready && !pipe_busy) begin
                state_next = STATE_TH_SUM;
                th_i_next = {LOC_BITS{1'b0}};
                th_addr_next = f_sb_reg;
            end
        end
        STATE_TH_SUM: begin
            // read (and clear) local index th_i of all groups
            rdq_next = acc_rd;
            rdq_valid_next = 1'b1;
            rdq_last_next = (th_i_reg == C_LOC_LAST[LOC_BITS-1:0]);
            rdq_i_next = th_i_reg;
            th_i_next = th_i_reg + 1'b1;
            th_addr_next = th_addr_reg + 1'b1;
            if (th_i_reg == C_LOC_LAST[LOC_BITS-1:0]) begin
                // the pipeline finishes the last local index on its own
                state_next = STATE_IDLE;
            end
        end
        default: begin
            state_next = STATE_IDLE;
        end
    endcase

    // next frame (after the event phase without completion, or after the threshold phase)
    if ((state_reg == STATE_EVENT && ev_end && !f_done) ||
            (state_reg == STATE_TH_SUM && th_i_reg == C_LOC_LAST[LOC_BITS-1:0])) begin
        if (t_reg == C_USED_LAST[T_BITS-1:0]) begin
            t_next = {T_BITS{1'b0}};
            f_kp_next = C_STRIDE[KP_BITS-1:0];
            f_kb_next = {KB_BITS{1'b0}};
            f_tau_next = {TAU_BITS{1'b0}};
            f_sb_next = {ACC_ADDR_BITS{1'b0}};
        end else begin
            t_next = t_reg + 1'b1;
            if (f_kp_reg == C_K_LAST[KP_BITS-1:0]) begin
                // the window of tau0 closed: the first tap is now in tau0 + 1
                f_kp_next = C_K_JUMP[KP_BITS-1:0];
                f_kb_next = C_KB_JUMP[KB_BITS-1:0];
                f_tau_next = f_tau_reg + 1'b1;
                f_sb_next = next_sb(f_sb_reg);
            end else begin
                f_kp_next = f_kp_reg + 1'b1;
                if (f_kp_reg >= C_STRIDE[KP_BITS-1:0]) begin
                    f_kb_next = f_kb_reg + C_LC[KB_BITS-1:0];
                end else begin
                    f_kb_next = {KB_BITS{1'b0}};
                end
            end
        end
    end

    // adder tree over the groups -> totals; parameters of this local index are read
    if (rdq_valid_reg) begin
        tot_next = lane_sum;
        tot_valid_next = 1'b1;
        tot_last_next = rdq_last_reg;
        tot_i_next = rdq_i_reg;
        par_re = 1'b1;
    end

    // totals -> activations (thresholds reached) or logits (bias added)
    if (tot_valid_reg) begin
        for (ln = 0; ln < LANES; ln = ln + 1) begin
            lane_tot = tot_reg[ln*ACC_BITS +: ACC_BITS];
            if (IS_CLASSIFIER) begin
                lane_par = par_q[ln*PARAM_BITS +: ACC_BITS];
                logit_full = {{OUT_BITS{1'b0}}, lane_tot + lane_par};
                out_next[ln*OUT_BITS +: OUT_BITS] = logit_full[OUT_BITS-1:0];
            end else begin
                cnt = 0;
                for (v = 0; v < LEVELS; v = v + 1) begin
                    lane_par = par_q[ln*PARAM_BITS + v*ACC_BITS +: ACC_BITS];
                    if ($signed(lane_tot) >= $signed(lane_par)) begin
                        cnt = cnt + 1;
                    end
                end
                out_next[ln*OUT_BITS +: OUT_BITS] = cnt[OUT_BITS-1:0];
            end
        end
        out_valid_next = 1'b1;
        out_last_next = tot_last_reg;
        base_full = tot_i_reg * C_LANES[BASE_BITS-1:0];
        out_base_next = base_full[BASE_BITS-1:0];
    end
end

always @(posedge clk) begin
    state_reg <= state_next;
    t_reg <= t_next;
    f_kp_reg <= f_kp_next;
    f_kb_reg <= f_kb_next;
    f_tau_reg <= f_tau_next;
    f_sb_reg <= f_sb_next;
    th_i_reg <= th_i_next;
    th_addr_reg <= th_addr_next;
    flush_reg <= flush_next;
    rdq_reg <= rdq_next;
    rdq_valid_reg <= rdq_valid_next;
    rdq_last_reg <= rdq_last_next;
    rdq_i_reg <= rdq_i_next;
    tot_reg <= tot_next;
    tot_valid_reg <= tot_valid_next;
    tot_last_reg <= tot_last_next;
    tot_i_reg <= tot_i_next;
    out_reg <= out_next;
    out_valid_reg <= out_valid_next;
    out_last_reg <= out_last_next;
    out_base_reg <= out_base_next;

    if (rst) begin
        state_reg <= STATE_FLUSH;
        t_reg <= {T_BITS{1'b0}};
        f_kp_reg <= C_STRIDE[KP_BITS-1:0];
        f_kb_reg <= {KB_BITS{1'b0}};
        f_tau_reg <= {TAU_BITS{1'b0}};
        f_sb_reg <= {ACC_ADDR_BITS{1'b0}};
        flush_reg <= {ACC_ADDR_BITS{1'b0}};
        rdq_valid_reg <= 1'b0;
        tot_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
    end
end

endmodule

`resetall
