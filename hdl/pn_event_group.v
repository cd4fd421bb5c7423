/*

pynq-neuro: one event group of pn_layer (input channels c with c mod GROUPS = GROUP)

The group takes the events (c_local, a) of its channels from the input frame buffer while
phase_on is high. For each active tap k of an event (k = k0, k0 - STRIDE, ... while k >= 0
and the output frame tau of the tap is below FRAMES_EMITTED; k0 and its output frame come
with the frame in frame_pos, frame_null when the frame has no active tap) it reads the index
entry at {k, c_local} = {count, base}, then the synapse words base ..
base+count-1, one per cycle (a tap with count 0, or an event without active taps, still takes
one cycle); every lane j with a valid entry {code, i} adds (2*code+1)*a to its partial
accumulator [slot(tau)][i]. idle is high when the group has no event waiting and no tap left
and its fetch stage is free for a new operation in the next cycle (the last word of an earlier
operation may still be in the fetch or apply stage: operations of the next frame follow them
without a gap).

Pipeline (one operation per cycle, no bubbles):

  select   event (popped in this cycle, combinational from the frame buffer) or next tap
           of the current event -> index RAM read
  fetch    index entry {count, base} -> synapse RAM reads base .. base+count-1
  apply    synapse word -> per lane: product, read-modify-write of the partial
           accumulator (distributed RAM, asynchronous read)

A tap position is {k, k*INDEX_STRIDE, tau, slot base} (slot base = (tau mod SLOTS)*LOCALS,
INDEX_STRIDE = LOCAL_CHANNELS rounded up to a power of two, so that the index address is the
concatenation {k, c_local}, without an adder); the next tap of an event is {k - STRIDE,
(k - STRIDE)*INDEX_STRIDE, tau + 1, next slot}.

Partial accumulators: acc_rd is the entry at acc_clear_addr of every lane while acc_clear is
high (the entry is cleared at the clock edge), otherwise the entry the apply stage updates.

Memories (never reset) have a load write port (load_bank = GROUP; load_kind 0: synapse
words, 1: index entries) and are initialised from MEM_PREFIX + "syn_g<GROUP>.mem" and
"idx_g<GROUP>.mem" (all zero when MEM_PREFIX is ""). The partial accumulators start at zero.

*/

`include "pn_prelude.vh"

module pn_event_group #
(
    // index of the group: its load bank and the number in its memory image names
    parameter GROUP = 0,
    // input channels of the group (local channel indices 0 .. LOCAL_CHANNELS-1)
    parameter LOCAL_CHANNELS = 28,
    // output units per frame of the layer
    parameter OUT_CHANNELS = 10,
    // consecutive input frames seen by one output frame
    parameter TAPS = 28,
    // input frames between two output frames
    parameter STRIDE = 1,
    // output frames produced per digit
    parameter FRAMES_EMITTED = 1,
    // width of a weight code (the weight is 2*code+1)
    parameter WEIGHT_BITS = 2,
    // lanes (output o is on lane o mod LANES)
    parameter LANES = 1,
    // two's-complement width of the partial accumulators
    parameter ACC_BITS = 16,
    // words of the synapse RAM
    parameter SYNAPSE_DEPTH = 784,
    // width of a column's word count
    parameter COUNT_BITS = 1,
    // bits of an input activation (unsigned)
    parameter IN_BITS = 8,
    // path prefix of the memory images ("dir/mem/L0_"), "" for zeroed memories
    parameter MEM_PREFIX = "",
    // width of load_data
    parameter LOAD_BITS = 160,
    // width of a local channel index; keep the default
    parameter CH_BITS = (LOCAL_CHANNELS > 1) ? $clog2(LOCAL_CHANNELS) : 1,
    // width of a partial accumulator address (SLOTS x LOCALS entries); keep the default
    parameter ACC_ADDR_BITS =
        ((TAPS + STRIDE - 1) / STRIDE * ((OUT_CHANNELS + LANES - 1) / LANES) > 1) ?
        $clog2((TAPS + STRIDE - 1) / STRIDE * ((OUT_CHANNELS + LANES - 1) / LANES)) : 1,
    // width of a tap position; keep the default
    parameter POS_BITS = $clog2(TAPS + STRIDE + 1) +
        $clog2(TAPS * (1 << $clog2(LOCAL_CHANNELS)) + 1) + 1 +
        $clog2(FRAMES_EMITTED + 2) + ACC_ADDR_BITS
)
(
    input  wire                       clk,
    input  wire                       rst,

    /*
     * Memory load port
     */
    input  wire                       load_we,
    input  wire [1:0]                 load_kind,
    input  wire [7:0]                 load_bank,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [15:0]                load_addr,
    input  wire [LOAD_BITS-1:0]       load_data,
    /* verilator lint_on UNUSEDSIGNAL */

    /*
     * Events of the group and the first active tap of the frame
     */
    input  wire                       phase_on,
    input  wire                       ev_valid,
    input  wire [CH_BITS-1:0]         ev_channel,
    input  wire [IN_BITS-1:0]         ev_value,
    output wire                       ev_pop,
    input  wire                       frame_null,
    input  wire [POS_BITS-1:0]        frame_pos,
    output wire                       idle,

    /*
     * Partial accumulators: read and clear
     */
    input  wire                       acc_clear,
    input  wire [ACC_ADDR_BITS-1:0]   acc_clear_addr,
    output wire [LANES*ACC_BITS-1:0]  acc_rd
);

// limits of the core and the derived fields of a layer
`include "pn_limits.vh"

localparam integer LOCALS = pn_locals(OUT_CHANNELS, LANES);
localparam integer LOCAL_BITS = pn_local_bits(OUT_CHANNELS, LANES);
localparam integer ENTRY_BITS = pn_entry_bits(OUT_CHANNELS, LANES, WEIGHT_BITS);
localparam integer WORD_BITS = LANES * ENTRY_BITS;
localparam integer ADDR_BITS = pn_index_width(SYNAPSE_DEPTH);
localparam integer INDEX_BITS = COUNT_BITS + ADDR_BITS;
localparam integer INDEX_STRIDE = pn_index_stride(LOCAL_CHANNELS);
localparam integer INDEX_DEPTH = TAPS * INDEX_STRIDE;
// partial accumulator slots (output frame tau uses slot tau mod SLOTS) and entries per lane
localparam integer SLOTS = (TAPS + STRIDE - 1) / STRIDE;
localparam integer ACC_DEPTH = SLOTS * LOCALS;
localparam IDX_ADDR_BITS = pn_index_width(INDEX_DEPTH);
// fields of a tap position: tap k (0 .. TAPS-1, or below 0 after the last one), tap times
// INDEX_STRIDE, output frame tau (0 .. FRAMES_EMITTED) and slot base
localparam KP_BITS = $clog2(TAPS + STRIDE + 1);
localparam KB_BITS = $clog2(INDEX_DEPTH + 1) + 1;
localparam TAU_BITS = $clog2(FRAMES_EMITTED + 2);
// an operation: local channel, event value and tap position
localparam OP_BITS = CH_BITS + IN_BITS + POS_BITS;
// width of a product magnitude |2*code+1| * a
localparam MAG_BITS = WEIGHT_BITS + IN_BITS;
// 2..4-bit weights: the group forms the 2^(WEIGHT_BITS-1) odd multiples (2m+1)*a of its
// event value once and the lanes select one (a multiplexer instead of an adder per lane)
localparam SHARED_MULT = (WEIGHT_BITS >= 2 && WEIGHT_BITS <= 4);
localparam NMULT = SHARED_MULT ? (1 << (WEIGHT_BITS - 1)) : 1;
// the local index field (at least one bit wide)
localparam LB = (LOCAL_BITS > 0) ? LOCAL_BITS : 1;

// integer constants used at fixed widths
localparam integer C_STRIDE = STRIDE;
localparam integer C_SLC = STRIDE * INDEX_STRIDE;
// the low bits of a tap times INDEX_STRIDE, where the index address takes the local channel
localparam integer C_CH_MASK = INDEX_STRIDE - 1;
localparam integer C_EMIT = FRAMES_EMITTED;
localparam integer C_LOCALS = LOCALS;
localparam integer C_ACC_LAST = ACC_DEPTH - 1;
localparam integer C_G = GROUP;

initial begin
    if (GROUP < 0 || GROUP > 255 || LOCAL_CHANNELS < 1 ||
            CH_BITS != pn_index_width(LOCAL_CHANNELS) ||
            ACC_ADDR_BITS != pn_index_width(ACC_DEPTH) ||
            POS_BITS != KP_BITS + KB_BITS + TAU_BITS + ACC_ADDR_BITS)
        `PN_STOP(("pn_event_group: GROUP = %0d, LOCAL_CHANNELS = %0d, CH_BITS = %0d, ACC_ADDR_BITS = %0d, POS_BITS = %0d",
                  GROUP, LOCAL_CHANNELS, CH_BITS, ACC_ADDR_BITS, POS_BITS))
    if (SYNAPSE_DEPTH < 1 || SYNAPSE_DEPTH > LIMIT_MAX_DEPTH || INDEX_DEPTH > LIMIT_MAX_DEPTH)
        `PN_STOP(("pn_event_group: SYNAPSE_DEPTH = %0d, INDEX_DEPTH = %0d; the loader addresses %0d words",
                  SYNAPSE_DEPTH, INDEX_DEPTH, LIMIT_MAX_DEPTH))
    if (WORD_BITS > LOAD_BITS || INDEX_BITS > LOAD_BITS)
        `PN_STOP(("pn_event_group: memory words of %0d and %0d bits, LOAD_BITS = %0d",
                  WORD_BITS, INDEX_BITS, LOAD_BITS))
end

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

// memory images "<MEM_PREFIX>syn_g<GROUP>.mem" and "<MEM_PREFIX>idx_g<GROUP>.mem" (the shorter
// names are padded with leading zero bytes, which name no character)
localparam integer GC1 = 48 + (GROUP % 10);
localparam integer GC10 = 48 + ((GROUP / 10) % 10);
localparam integer GC100 = 48 + (GROUP / 100);
localparam HAVE_MEM = (MEM_PREFIX != "");
/* verilator lint_off WIDTH */
localparam SYN_FILE = !HAVE_MEM ? "" :
    (GROUP < 10) ? {MEM_PREFIX, "syn_g", GC1[7:0], ".mem"} :
    (GROUP < 100) ? {MEM_PREFIX, "syn_g", GC10[7:0], GC1[7:0], ".mem"} :
    {MEM_PREFIX, "syn_g", GC100[7:0], GC10[7:0], GC1[7:0], ".mem"};
localparam IDX_FILE = !HAVE_MEM ? "" :
    (GROUP < 10) ? {MEM_PREFIX, "idx_g", GC1[7:0], ".mem"} :
    (GROUP < 100) ? {MEM_PREFIX, "idx_g", GC10[7:0], GC1[7:0], ".mem"} :
    {MEM_PREFIX, "idx_g", GC100[7:0], GC10[7:0], GC1[7:0], ".mem"};
/* verilator lint_on WIDTH */
wire load_bank_hit = load_we && load_bank == C_G[7:0];

// current event with taps left: cur_op_reg holds its next operation
reg cur_more_reg = 1'b0, cur_more_next;
reg [OP_BITS-1:0] cur_op_reg = {OP_BITS{1'b0}}, cur_op_next;

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
/* verilator lint_off UNUSEDSIGNAL */
// odd multiples (2m+1)*c_val_reg, m < NMULT (read by the SHARED_MULT products only)
reg [NMULT*MAG_BITS-1:0] c_mult_reg = {NMULT*MAG_BITS{1'b0}}, c_mult_next;
reg [31:0] mult_full;
/* verilator lint_on UNUSEDSIGNAL */
integer m;

// selection of the next operation: a tap of the current event, else a new event
wire sel_null = !cur_more_reg && frame_null;
wire [OP_BITS-1:0] sel_op = cur_more_reg ? cur_op_reg : {ev_channel, ev_value, frame_pos};
wire [CH_BITS-1:0] sel_ch = sel_op[OP_BITS-1 -: CH_BITS];
wire [IN_BITS-1:0] sel_val = sel_op[POS_BITS +: IN_BITS];
wire [KP_BITS-1:0] sel_k = sel_op[POS_BITS-1 -: KP_BITS];
wire [KB_BITS-1:0] sel_kb = sel_op[ACC_ADDR_BITS+TAU_BITS +: KB_BITS];
wire [TAU_BITS-1:0] sel_tau = sel_op[ACC_ADDR_BITS +: TAU_BITS];
wire [ACC_ADDR_BITS-1:0] sel_sb = sel_op[ACC_ADDR_BITS-1:0];
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
generate
    if (COUNT_BITS > 1) begin : g_last
        assign b_last = b_null_reg || (cur_left[COUNT_BITS-1:1] == {(COUNT_BITS-1){1'b0}});
    end else begin : g_last1
        assign b_last = 1'b1;
    end
endgenerate

assign ev_pop = phase_on && b_free && !cur_more_reg;
assign idle = !ev_valid && !cur_more_reg && b_free;

always @* begin
    cur_more_next = cur_more_reg;
    cur_op_next = cur_op_reg;

    b_valid_next = b_valid_reg;
    b_first_next = b_first_reg;
    b_null_next = b_null_reg;
    b_val_next = b_val_reg;
    b_sb_next = b_sb_reg;
    b_addr_next = b_addr_reg;
    b_left_next = b_left_reg;

    load = phase_on && b_free && (cur_more_reg || ev_valid);

    idx_ra_full = (sel_kb & ~C_CH_MASK[KB_BITS-1:0]) |
        ({{(KB_BITS-CH_BITS){1'b0}}, sel_ch} & C_CH_MASK[KB_BITS-1:0]);
    idx_ra = idx_ra_full[IDX_ADDR_BITS-1:0];
    idx_re = load && !sel_null;

    // select stage: the next tap of this event
    if (load) begin
        cur_more_next = !sel_null && (sel_k >= C_STRIDE[KP_BITS-1:0]) &&
            ({1'b0, sel_tau} + 1'b1 < C_EMIT[TAU_BITS:0]);
        cur_op_next = {sel_ch, sel_val, sel_k - C_STRIDE[KP_BITS-1:0],
                       sel_kb - C_SLC[KB_BITS-1:0], sel_tau + 1'b1, next_sb(sel_sb)};
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
    cur_op_reg <= cur_op_next;
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

pn_ram #(.WIDTH(WORD_BITS), .DEPTH(SYNAPSE_DEPTH), .RAM_STYLE("block"), .INIT_FILE(SYN_FILE))
syn_ram_inst (.clk(clk), .wr_en(load_bank_hit && load_kind == 2'd0),
              .wr_addr(load_addr[ADDR_BITS-1:0]), .wr_data(load_data[WORD_BITS-1:0]),
              .rd_en(syn_re), .rd_addr(cur_addr), .rd_data(syn_q));

/*
 * Lanes: partial accumulators of this group
 */
genvar j, pb;
generate
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

        // (2*code + 1) * a without a multiplier, in sign and magnitude: with s the sign of
        // the code, |2*code + 1| = 2*(code ^ s) + 1. For 2..4-bit codes the magnitude is the
        // group's multiple number (code ^ s); otherwise it is a plus a << (i+1) for every set
        // bit i of code ^ s (an adder tree of WEIGHT_BITS-1 adders). The accumulator adds or
        // subtracts it (one subtractor, below).
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
        wire [ACC_ADDR_BITS:0] mac_addr_full =
            {1'b0, c_sb_reg} + {{(ACC_ADDR_BITS+1-LB){1'b0}}, e_local};
        /* verilator lint_on UNUSEDSIGNAL */
        wire [ACC_ADDR_BITS-1:0] mac_addr = mac_addr_full[ACC_ADDR_BITS-1:0];

        // one address for the read-modify-write and the clear
        wire [ACC_ADDR_BITS-1:0] acc_addr = acc_clear ? acc_clear_addr : mac_addr;
        wire [ACC_BITS-1:0] acc_q = acc_mem[acc_addr];
        wire acc_we = acc_clear || (c_valid_reg && e_valid);
        // acc +- magnitude in one subtractor acc - op_sub - op_borrow, the borrow entering
        // as the low bit of operands one bit wider: a negative code subtracts the magnitude,
        // a positive one subtracts ~mag and borrows (acc - ~mag - 1 = acc + mag), a clear
        // writes acc - acc = 0. (A subtraction keeps acc on the carry chain's direct input;
        // with a sum of three terms the synthesis may route the computed operand there
        // and spend a LUT per bit on it.)
        wire [ACC_BITS-1:0] op_sub = acc_clear ? acc_q : (mag_acc ^ {ACC_BITS{!sgn}});
        wire op_borrow = !sgn && !acc_clear;
        /* verilator lint_off UNUSEDSIGNAL */
        wire [ACC_BITS:0] acc_diff = {acc_q, 1'b0} - {op_sub, op_borrow};
        /* verilator lint_on UNUSEDSIGNAL */
        wire [ACC_BITS-1:0] acc_d = acc_diff[ACC_BITS:1];

        always @(posedge clk) begin
            if (acc_we) begin
                acc_mem[acc_addr] <= acc_d;
            end
        end

        assign acc_rd[j*ACC_BITS +: ACC_BITS] = acc_q;
    end
endgenerate

endmodule

`resetall
