/*

pynq-neuro: one time-delay layer on GROUPS x LANES processing elements

Input frames t = 0 .. FRAMES_USED-1 of every digit are handled in order (the layer counts
them itself). For frame t:

  event phase      Every group (pn_event_group) pops its events (c_local, a) from the input
                   frame buffer; for each active tap k = t - tau*STRIDE (tau <
                   FRAMES_EMITTED, increasing tau) it reads the index entry
                   {k, c_local} = {count, base}, then the synapse words
                   base .. base+count-1, one per cycle (a tap with count 0, or an event
                   without active taps, still takes one cycle); every lane j with a valid
                   entry {code, i} adds (2*code+1)*a to its partial accumulator
                   [slot(tau)][i] of this group. The input frame is released in the
                   cycle in which every group is idle (its last word in the fetch
                   stage): 1 + max over groups of the group's operation cycles, and the
                   next frame's operations follow the last words without a gap.
  threshold phase  When output frame tau = (t - TAPS + 1)/STRIDE completes and the output
                   is free (wr_ready): one cycle to start (the groups apply their last
                   words in it), then one local index i per cycle
                   through a pipeline: every lane reads (and clears) the partial
                   accumulators [slot(tau)][i] of all groups at once (registered), adds
                   them in an adder tree, compares the total with the thresholds (hidden
                   layer: the activation is the number of the LEVELS comparisons that hold,
                   counted in a second adder tree) or adds the bias (classifier), and
                   writes the LANES results to outputs i*LANES + j (wr_en,
                   wr_base = i*LANES); wr_done comes with the last write, LOCALS + 4
                   (THRESHOLD_LATENCY) cycles after the start. The next frame may start
                   in the last TH_OVERLAP (2, or 1 for LOCALS = 1) cycles: its operations
                   reach the partial accumulators after the last clear, and the last
                   pipeline stages no longer touch them. A threshold phase starts only when
                   the pipeline is empty.

Each group runs a select / fetch / apply pipeline with its own index and synapse RAMs and the
lanes' partial accumulators (pn_event_group).

Memories (never reset) have a load write port and are initialised from
MEM_PREFIX + "syn_g<g>.mem", "idx_g<g>.mem" (pn_event_group) and "par.mem" (all zero when
MEM_PREFIX is ""). After rst the partial accumulators are cleared, one address per cycle
(busy stays high).

*/

`include "pn_prelude.vh"

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
localparam integer LEVELS = pn_levels(ACT_BITS, IS_CLASSIFIER);
localparam integer PARAM_BITS = LEVELS * ACC_BITS;
localparam integer INDEX_STRIDE = pn_index_stride(LOCAL_CHANNELS);
localparam integer INDEX_DEPTH = pn_index_depth(TAPS, IN_CHANNELS, GROUPS);
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
    // (the synapse and index memories are checked by pn_event_group)
    if (LOCALS > LIMIT_MAX_DEPTH || PAR_WIDTH > LOAD_BITS || LOAD_BITS > LIMIT_MAX_WORD_BITS)
        `PN_STOP(("pn_layer: LOCALS = %0d (at most %0d), parameter words of %0d bits, LOAD_BITS = %0d (at most %0d)",
                  LOCALS, LIMIT_MAX_DEPTH, PAR_WIDTH, LOAD_BITS, LIMIT_MAX_WORD_BITS))
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
localparam LOC_BITS = (LOCALS > 1) ? $clog2(LOCALS) : 1;
localparam T_BITS = (FRAMES_USED > 1) ? $clog2(FRAMES_USED) : 1;
// first tap of a frame plus STRIDE (1 .. TAPS+STRIDE-1); below STRIDE: no active tap
localparam KP_BITS = $clog2(TAPS + STRIDE + 1);
// tap index times INDEX_STRIDE
localparam KB_BITS = $clog2(INDEX_DEPTH + 1) + 1;
// output frame index 0 .. FRAMES_EMITTED
localparam TAU_BITS = $clog2(FRAMES_EMITTED + 2);
// tap position {k0, k0*INDEX_STRIDE, tau0, slot base} (pn_event_group)
localparam POS_BITS = KP_BITS + KB_BITS + TAU_BITS + ACC_ADDR_BITS;

// integer constants used at fixed widths
localparam integer C_STRIDE = STRIDE;
localparam integer C_K_LAST = TAPS + STRIDE - 1;
localparam integer C_K_JUMP = TAPS;
localparam integer C_KB_JUMP = (TAPS > STRIDE) ? (TAPS - STRIDE) * INDEX_STRIDE : 0;
localparam integer C_IS = INDEX_STRIDE;
localparam integer C_EMIT = FRAMES_EMITTED;
localparam integer C_LOCALS = LOCALS;
localparam integer C_ACC_LAST = ACC_DEPTH - 1;
localparam integer C_USED_LAST = FRAMES_USED - 1;
localparam integer C_LOC_LAST = LOCALS - 1;
// the next frame may start in the last TH_OVERLAP cycles of a threshold phase: an operation
// reaches the partial accumulators two cycles after its selection, after the last clear
localparam integer TH_OVERLAP = (LOCALS < 2) ? LOCALS : 2;
localparam integer C_TAIL_FIRST = LOCALS - TH_OVERLAP;
localparam integer C_LANES = LANES;

localparam HAVE_MEM = (MEM_PREFIX != "");

// states
localparam [2:0]
    STATE_FLUSH = 3'd0,
    STATE_IDLE = 3'd1,
    STATE_EVENT = 3'd2,
    STATE_TH_WAIT = 3'd3,
    STATE_TH_SUM = 3'd4;

reg [2:0] state_reg = STATE_FLUSH, state_next;

// the state after a cycle in which a frame may be in its event phase: the threshold phase when
// the frame ends and completes an output frame, idle when it ends otherwise, else the event
// phase (or idle, without a frame)
function [2:0] frame_state;
    input ended;
    input done;
    input valid;
    begin
        if (ended) begin
            frame_state = done ? STATE_TH_WAIT : STATE_IDLE;
        end else begin
            frame_state = valid ? STATE_EVENT : STATE_IDLE;
        end
    end
endfunction

// frame sequencing: frame t, its first active tap k0 (as k0 + STRIDE), k0*INDEX_STRIDE,
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

// threshold pipeline: partial sums of all groups (rdq) -> total (tot) -> output (out), one
// valid flag per stage (a shift register); the first two stages carry their local index i with
// a flag for the last one as a tag {last, i}
reg [2:0] valid_reg = 3'b000, valid_next;
reg [GROUPS*LANES*ACC_BITS-1:0] rdq_reg = {GROUPS*LANES*ACC_BITS{1'b0}}, rdq_next;
reg [LOC_BITS:0] rdq_tag_reg = {(LOC_BITS+1){1'b0}}, rdq_tag_next;
reg [LANES*ACC_BITS-1:0] tot_reg = {LANES*ACC_BITS{1'b0}}, tot_next;
reg [LOC_BITS:0] tot_tag_reg = {(LOC_BITS+1){1'b0}}, tot_tag_next;
reg [LANES*OUT_BITS-1:0] out_reg = {LANES*OUT_BITS{1'b0}}, out_next;
reg out_last_reg = 1'b0, out_last_next;
reg [BASE_BITS-1:0] out_base_reg = {BASE_BITS{1'b0}}, out_base_next;

// parameter RAM read port
wire [LANES*PARAM_BITS-1:0] par_q;
reg par_re;

// per group status and partial accumulator read data
wire [GROUPS-1:0] grp_idle;
wire [GROUPS*LANES*ACC_BITS-1:0] acc_rd;

// frame-level tap information
wire f_null = (f_kp_reg < C_STRIDE[KP_BITS-1:0]) || ({1'b0, f_tau_reg} >= C_EMIT[TAU_BITS:0]);
wire f_done = (f_kp_reg == C_K_LAST[KP_BITS-1:0]) && ({1'b0, f_tau_reg} < C_EMIT[TAU_BITS:0]);
wire [KP_BITS-1:0] f_k0 = f_kp_reg - C_STRIDE[KP_BITS-1:0];
// slot base of the next output frame (slot base = slot*LOCALS)
wire [ACC_ADDR_BITS:0] f_sb_step = {1'b0, f_sb_reg} + C_LOCALS[ACC_ADDR_BITS:0];

wire flush_on = (state_reg == STATE_FLUSH);
wire th_on = (state_reg == STATE_TH_SUM);
// the threshold phase starts (the frame registers move on to the next input frame)
wire th_start = (state_reg == STATE_TH_WAIT) && wr_ready && !pipe_busy;
// the threshold phase reads its last local index
wire th_i_last = (th_i_reg == C_LOC_LAST[LOC_BITS-1:0]);
wire th_last = th_on && th_i_last;
// the last TH_OVERLAP cycles of the threshold phase
wire th_tail;
generate
    if (C_TAIL_FIRST > 0) begin : g_tail
        assign th_tail = th_on && (th_i_reg >= C_TAIL_FIRST[LOC_BITS-1:0]);
    end else begin : g_tail_all
        assign th_tail = th_on;
    end
endgenerate
// a frame that ended in the threshold phase's tail and completes an output frame: its threshold
// phase follows this one, and no frame may start before it
reg th_pend_reg = 1'b0;
// a frame may start: idle, or in the tail of a threshold phase
wire frame_free = (state_reg == STATE_IDLE) || (th_tail && !th_pend_reg);
// groups may take events: in the event phase, or in the cycle a frame arrives
wire phase_on = (state_reg == STATE_EVENT) || (frame_free && rd_frame_valid);
// the event phase ends (the input frame is released) when every group is idle
wire ev_end = phase_on && (&grp_idle);

assign rd_release = ev_end;
wire rdq_valid = valid_reg[0];
wire tot_valid = valid_reg[1];
wire out_valid = valid_reg[2];

assign wr_en = out_valid;
assign wr_base = out_base_reg;
assign wr_data = out_reg;
assign wr_done = out_valid && out_last_reg;
// the threshold pipeline (accumulator capture, adder tree, comparison) holds data
wire pipe_busy = |valid_reg;
assign busy = (state_reg != STATE_IDLE) || (t_reg != {T_BITS{1'b0}}) || pipe_busy;

/*
 * Event groups
 */
// the first active tap of the frame, as pn_event_group takes it
wire [POS_BITS-1:0] f_pos = {f_k0, f_kb_reg, f_tau_reg, f_sb_reg};
// partial accumulators: the flush, else the threshold phase, reads and clears them
wire acc_clear = flush_on || th_on;
wire [ACC_ADDR_BITS-1:0] acc_clear_addr = flush_on ? flush_reg : th_addr_reg;

genvar g, j, v;
generate
    for (g = 0; g < GROUPS; g = g + 1) begin : g_group
        pn_event_group #(
            .GROUP(g),
            .LOCAL_CHANNELS(LOCAL_CHANNELS),
            .OUT_CHANNELS(OUT_CHANNELS),
            .TAPS(TAPS),
            .STRIDE(STRIDE),
            .FRAMES_EMITTED(FRAMES_EMITTED),
            .WEIGHT_BITS(WEIGHT_BITS),
            .LANES(LANES),
            .ACC_BITS(ACC_BITS),
            .SYNAPSE_DEPTH(SYNAPSE_DEPTH),
            .COUNT_BITS(COUNT_BITS),
            .IN_BITS(IN_BITS),
            .MEM_PREFIX(MEM_PREFIX),
            .LOAD_BITS(LOAD_BITS),
            .CH_BITS(CH_BITS),
            .ACC_ADDR_BITS(ACC_ADDR_BITS),
            .POS_BITS(POS_BITS)
        )
        group_inst (
            .clk(clk),
            .rst(rst),
            .load_we(load_we),
            .load_kind(load_kind),
            .load_bank(load_bank),
            .load_addr(load_addr),
            .load_data(load_data),
            .phase_on(phase_on),
            .ev_valid(ev_valid[g]),
            .ev_channel(ev_channel[g*CH_BITS +: CH_BITS]),
            .ev_value(ev_value[g*IN_BITS +: IN_BITS]),
            .ev_pop(ev_pop[g]),
            .frame_null(f_null),
            .frame_pos(f_pos),
            .idle(grp_idle[g]),
            .acc_clear(acc_clear),
            .acc_clear_addr(acc_clear_addr),
            .acc_rd(acc_rd[g*LANES*ACC_BITS +: LANES*ACC_BITS])
        );
    end
endgenerate

/*
 * Parameter RAM (thresholds or biases of the LANES outputs of a local index)
 */
pn_ram #(.WIDTH(LANES*PARAM_BITS), .DEPTH(LOCALS), .RAM_STYLE("auto"), .SHARED_ADDR(1),
         .INIT_FILE(HAVE_MEM ? {MEM_PREFIX, "par.mem"} : ""))
par_ram_inst (.clk(clk), .wr_en(load_we && load_kind == 2'd2), .wr_addr(load_addr[LOC_BITS-1:0]),
              .wr_data(load_data[LANES*PARAM_BITS-1:0]), .rd_en(par_re), .rd_addr(rdq_tag_reg[LOC_BITS-1:0]),
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
 * Threshold pipeline: per lane, the output of a total: the logit (total + bias) of the
 * classifier, or the activation of a hidden layer: the number of thresholds the total reaches
 * (total >= threshold, signed; the thresholds need not be sorted), counted in an adder tree
 */
localparam integer TRIPLES = (LEVELS + 2) / 3;
wire [LANES*OUT_BITS-1:0] lane_out;

generate
    for (j = 0; j < LANES; j = j + 1) begin : g_lane_out
        wire [ACC_BITS-1:0] tot = tot_reg[j*ACC_BITS +: ACC_BITS];
        wire [PARAM_BITS-1:0] par = par_q[j*PARAM_BITS +: PARAM_BITS];

        if (IS_CLASSIFIER) begin : g_logit
            assign lane_out[j*OUT_BITS +: OUT_BITS] = tot + par;
        end else begin : g_act
            // comparisons (padded with zeros to whole triples), counted three at a time by
            // full adders, whose counts the adder tree sums
            wire [3*TRIPLES-1:0] reached;
            wire [TRIPLES*OUT_BITS-1:0] counts;

            for (v = 0; v < 3*TRIPLES; v = v + 1) begin : g_level
                if (v < LEVELS) begin : g_cmp
                    wire [ACC_BITS-1:0] th = par[v*ACC_BITS +: ACC_BITS];

                    assign reached[v] = ($signed(tot) >= $signed(th));
                end else begin : g_pad
                    assign reached[v] = 1'b0;
                end
            end

            for (v = 0; v < TRIPLES; v = v + 1) begin : g_triple
                wire [2:0] r = reached[3*v +: 3];
                /* verilator lint_off UNUSEDSIGNAL */
                wire [OUT_BITS+1:0] fa = {{OUT_BITS{1'b0}}, (r[0] & r[1]) | (r[2] & (r[0] ^ r[1])),
                                          ^r};
                /* verilator lint_on UNUSEDSIGNAL */

                assign counts[v*OUT_BITS +: OUT_BITS] = fa[OUT_BITS-1:0];
            end

            pn_adder_tree #(
                .N(TRIPLES),
                .WIDTH(OUT_BITS)
            )
            level_count_inst (
                .in(counts),
                .sum(lane_out[j*OUT_BITS +: OUT_BITS])
            );
        end
    end
endgenerate

/*
 * Sequencing and threshold pipeline
 */
/* verilator lint_off UNUSEDSIGNAL */
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
    valid_next = {valid_reg[1:0], th_on};
    rdq_next = rdq_reg;
    rdq_tag_next = rdq_tag_reg;
    tot_next = tot_reg;
    tot_tag_next = tot_tag_reg;
    out_next = out_reg;
    out_last_next = out_last_reg;
    out_base_next = out_base_reg;
    par_re = 1'b0;
    base_full = {BASE_BITS+LOC_BITS{1'b0}};

    case (state_reg)
        STATE_FLUSH: begin
            flush_next = flush_reg + 1'b1;
            if (flush_reg == C_ACC_LAST[ACC_ADDR_BITS-1:0]) begin
                state_next = STATE_IDLE;
            end
        end
        STATE_IDLE, STATE_EVENT: begin
            state_next = frame_state(ev_end, f_done, rd_frame_valid);
        end
        STATE_TH_WAIT: begin
            if (th_start) begin
                state_next = STATE_TH_SUM;
                th_i_next = {LOC_BITS{1'b0}};
                th_addr_next = f_sb_reg;
            end
        end
        STATE_TH_SUM: begin
            // read (and clear) local index th_i of all groups
            rdq_next = acc_rd;
            rdq_tag_next = {th_i_last, th_i_reg};
            th_i_next = th_i_reg + 1'b1;
            th_addr_next = th_addr_reg + 1'b1;
            if (th_last) begin
                // the pipeline finishes the last local index on its own; the next frame may
                // already have started
                state_next = th_pend_reg ? STATE_TH_WAIT :
                    frame_state(ev_end, f_done, rd_frame_valid);
            end
        end
        default: begin
            state_next = STATE_IDLE;
        end
    endcase

    // next frame (after the event phase without completion, or as the threshold phase starts)
    if ((ev_end && !f_done) || th_start) begin
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
                f_sb_next = (f_sb_step > C_ACC_LAST[ACC_ADDR_BITS:0]) ?
                    {ACC_ADDR_BITS{1'b0}} : f_sb_step[ACC_ADDR_BITS-1:0];
            end else begin
                f_kp_next = f_kp_reg + 1'b1;
                if (f_kp_reg >= C_STRIDE[KP_BITS-1:0]) begin
                    f_kb_next = f_kb_reg + C_IS[KB_BITS-1:0];
                end else begin
                    f_kb_next = {KB_BITS{1'b0}};
                end
            end
        end
    end

    // adder tree over the groups -> totals; parameters of this local index are read
    if (rdq_valid) begin
        tot_next = lane_sum;
        tot_tag_next = rdq_tag_reg;
        par_re = 1'b1;
    end

    // totals -> activations (thresholds reached) or logits (bias added)
    if (tot_valid) begin
        out_next = lane_out;
        out_last_next = tot_tag_reg[LOC_BITS];
        base_full = tot_tag_reg[LOC_BITS-1:0] * C_LANES[BASE_BITS-1:0];
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
    valid_reg <= valid_next;
    rdq_tag_reg <= rdq_tag_next;
    tot_reg <= tot_next;
    tot_tag_reg <= tot_tag_next;
    out_reg <= out_next;
    out_last_reg <= out_last_next;
    out_base_reg <= out_base_next;
    th_pend_reg <= th_on && !th_last && ev_end && f_done;

    if (rst) begin
        state_reg <= STATE_FLUSH;
        th_pend_reg <= 1'b0;
        t_reg <= {T_BITS{1'b0}};
        f_kp_reg <= C_STRIDE[KP_BITS-1:0];
        f_kb_reg <= {KB_BITS{1'b0}};
        f_tau_reg <= {TAU_BITS{1'b0}};
        f_sb_reg <= {ACC_ADDR_BITS{1'b0}};
        flush_reg <= {ACC_ADDR_BITS{1'b0}};
        valid_reg <= 3'b000;
    end
end

endmodule

`resetall
