/*

pynq-neuro: frame buffer ring with per-group event selection

A ring of NBUF frames of CHANNELS activations (BITS bits each, plus a nonzero flag),
between one producer and one consumer that reads the frame as events in GROUPS groups.

Producer: while wr_ready is high the producer writes the frame at the write pointer
(wr_en: WR_WIDTH activations to channels wr_base .. wr_base+WR_WIDTH-1; wr_base must be
a multiple of WR_WIDTH; channels >= CHANNELS are ignored) and pulses wr_done, in the same
cycle as its last write or later. The frame is readable from the next cycle on.

Consumer: while rd_frame_valid is high, group g presents its next event: the lowest
channel c = l*GROUPS + g of the frame whose event flag is still set (ev_channel = l,
ev_value = its activation). ev_pop[g] clears that flag at the clock edge (ignored when
ev_valid[g] is low), so the next event follows in the next cycle and zero activations
cost nothing. rd_release frees the frame (all its flags are cleared) and moves the read
pointer; the producer sees wr_ready in the next cycle.

Where the flags come from (the same behaviour, three costs):
  held   groups of more than 8 local channels: a nonzero flag per channel and frame, set by
         a write and cleared by a release, and the read frame's event flags in a register
         of their own (loaded from the next frame's flags and the write of the same cycle by
         a release, cleared by the pops), so that a group's priority encoder starts at a
         flip-flop and not behind the read-pointer multiplexer;
  stored a flag per channel and frame that the pops clear, read behind the read pointer,
         where the read pointer and a channel's activations in all frames exceed one 6-input
         LUT;
  derived elsewhere: the flag is the OR of the read activation, which a pop or a release
         clears.

Every channel of a frame is expected to be written; unwritten channels read as zero
because the flags are cleared when a frame is released.

*/

`include "pn_prelude.vh"

module pn_frame_buffer #
(
    // activations per frame
    parameter CHANNELS = 28,
    // bits per activation (unsigned)
    parameter BITS = 8,
    // frames in the ring (>= 2)
    parameter NBUF = 2,
    // event groups of the consumer: channel c belongs to group c mod GROUPS
    parameter GROUPS = 1,
    // activations written per wr_en
    parameter WR_WIDTH = 4,
    // width of wr_base
    parameter BASE_BITS = 16,
    // width of a local channel index; keep the default
    parameter CH_BITS = ((CHANNELS + GROUPS - 1) / GROUPS > 1) ?
        $clog2((CHANNELS + GROUPS - 1) / GROUPS) : 1
)
(
    input  wire                       clk,
    input  wire                       rst,

    /*
     * Producer
     */
    output wire                       wr_ready,
    input  wire                       wr_en,
    input  wire [BASE_BITS-1:0]       wr_base,
    input  wire [WR_WIDTH*BITS-1:0]   wr_data,
    input  wire                       wr_done,

    /*
     * Consumer
     */
    output wire                       rd_frame_valid,
    output wire [GROUPS-1:0]          ev_valid,
    output wire [GROUPS*CH_BITS-1:0]  ev_channel,
    output wire [GROUPS*BITS-1:0]     ev_value,
    input  wire [GROUPS-1:0]          ev_pop,
    input  wire                       rd_release
);

// local channels per group
localparam LOCAL_CH = (CHANNELS + GROUPS - 1) / GROUPS;
// ring pointer width
localparam PTR_BITS = $clog2(NBUF) > 0 ? $clog2(NBUF) : 1;
// bits of one frame
localparam FRAME_BITS = CHANNELS * BITS;
// last ring position
localparam integer LAST_PTR = NBUF - 1;
// the ring position after the first
localparam [PTR_BITS-1:0] SECOND_PTR = 1;
// flags per channel and frame (see above): held where a group's priority encoder is more than
// three levels deep, else stored where deriving a flag takes a LUT level more, else derived
localparam HOLD_FLAGS = (LOCAL_CH > 8);
localparam STORE_FLAGS = !HOLD_FLAGS && (PTR_BITS + NBUF * BITS > 6);
localparam FRAME_FLAGS = HOLD_FLAGS || STORE_FLAGS;

// parameter checks: stop the simulation at time 0 and the synthesis with the message
initial begin
    if (NBUF < 2 || BITS < 1 || GROUPS < 1 || GROUPS > CHANNELS || WR_WIDTH < 1 ||
            CHANNELS > (1 << BASE_BITS))
        `PN_STOP(("pn_frame_buffer: NBUF = %0d (>= 2), BITS = %0d, GROUPS = %0d (1..CHANNELS = %0d), WR_WIDTH = %0d, BASE_BITS = %0d",
                  NBUF, BITS, GROUPS, CHANNELS, WR_WIDTH, BASE_BITS))
end

reg [NBUF-1:0] full_reg = {NBUF{1'b0}}, full_next;
reg [PTR_BITS-1:0] wr_ptr_reg = {PTR_BITS{1'b0}}, wr_ptr_next;
reg [PTR_BITS-1:0] rd_ptr_reg = {PTR_BITS{1'b0}}, rd_ptr_next;
// the ring position after the read pointer
reg [PTR_BITS-1:0] rd_ptr_inc_reg = SECOND_PTR, rd_ptr_inc_next;

assign wr_ready = !full_reg[wr_ptr_reg];
assign rd_frame_valid = full_reg[rd_ptr_reg];

// contents and flags of every frame (one block per buffer below)
wire [NBUF*FRAME_BITS-1:0] all_val;
/* verilator lint_off UNUSEDSIGNAL */
wire [NBUF*CHANNELS-1:0] all_nz;    // zero where the flags are derived
/* verilator lint_on UNUSEDSIGNAL */

// the frame at the read pointer and its event flags
wire [FRAME_BITS-1:0] rd_val = all_val[rd_ptr_reg*FRAME_BITS +: FRAME_BITS];
wire [CHANNELS-1:0] rd_nz;

// channels addressed by wr_base (aligned to WR_WIDTH), their data and its nonzero flags
wire [CHANNELS-1:0] wr_hit;
wire [FRAME_BITS-1:0] wr_val;
/* verilator lint_off UNUSEDSIGNAL */
wire [CHANNELS-1:0] wr_nz;          // unused where the flags are derived
/* verilator lint_on UNUSEDSIGNAL */

genvar c_i;
generate
    for (c_i = 0; c_i < CHANNELS; c_i = c_i + 1) begin : g_hit
        localparam integer CH_BASE = (c_i / WR_WIDTH) * WR_WIDTH;
        assign wr_hit[c_i] = (wr_base == CH_BASE[BASE_BITS-1:0]);
        assign wr_val[c_i*BITS +: BITS] = wr_data[(c_i % WR_WIDTH)*BITS +: BITS];
        assign wr_nz[c_i] = |wr_val[c_i*BITS +: BITS];
    end
endgenerate

// per-group event selection; pop_clear: the flags cleared by this cycle's pops
wire [CHANNELS-1:0] pop_clear;

genvar g, l;
generate
    for (g = 0; g < GROUPS; g = g + 1) begin : g_group
        wire [LOCAL_CH-1:0] grp_nz;
        wire [LOCAL_CH*BITS-1:0] grp_val;
        /* verilator lint_off UNUSEDSIGNAL */
        wire [LOCAL_CH-1:0] onehot;     // padding positions (c >= CHANNELS) are unused
        /* verilator lint_on UNUSEDSIGNAL */
        wire any;
        wire [CH_BITS-1:0] idx;

        for (l = 0; l < LOCAL_CH; l = l + 1) begin : g_local
            if (l*GROUPS + g < CHANNELS) begin : g_in
                assign grp_nz[l] = rd_nz[l*GROUPS + g];
                assign grp_val[l*BITS +: BITS] = rd_val[(l*GROUPS + g)*BITS +: BITS];
                assign pop_clear[l*GROUPS + g] = onehot[l] & ev_pop[g] & rd_frame_valid;
            end else begin : g_out
                assign grp_nz[l] = 1'b0;
                assign grp_val[l*BITS +: BITS] = {BITS{1'b0}};
            end
        end

        pn_priority_encoder #(
            .WIDTH(LOCAL_CH),
            .INDEX_BITS(CH_BITS)
        )
        enc_inst (
            .in_bits(grp_nz),
            .out_valid(any),
            .out_index(idx)
        );

        // lowest set flag as a one-hot vector
        assign onehot = grp_nz & (~grp_nz + 1'b1);

        assign ev_valid[g] = rd_frame_valid & any;
        assign ev_channel[g*CH_BITS +: CH_BITS] = idx;
        assign ev_value[g*BITS +: BITS] = grp_val[idx*BITS +: BITS];
    end
endgenerate

// frame storage: the activations and the flags of buffer fb
genvar fb;
generate
    for (fb = 0; fb < NBUF; fb = fb + 1) begin : g_buf
        localparam integer C_FB = fb;

        reg [FRAME_BITS-1:0] val_reg = {FRAME_BITS{1'b0}}, val_next;

        wire wr_sel = wr_en && (wr_ptr_reg == C_FB[PTR_BITS-1:0]);
        wire rd_sel = rd_frame_valid && (rd_ptr_reg == C_FB[PTR_BITS-1:0]);

        assign all_val[fb*FRAME_BITS +: FRAME_BITS] = val_reg;

        integer c;

        // a write sets the activation; with derived flags a pop or a release clears it
        always @* begin
            val_next = val_reg;
            for (c = 0; c < CHANNELS; c = c + 1) begin
                if (wr_sel && wr_hit[c]) begin
                    val_next[c*BITS +: BITS] = wr_val[c*BITS +: BITS];
                end
                if (!FRAME_FLAGS && rd_sel && (rd_release || pop_clear[c])) begin
                    val_next[c*BITS +: BITS] = {BITS{1'b0}};
                end
            end
        end

        always @(posedge clk) begin
            val_reg <= val_next;
            if (rst && !FRAME_FLAGS) begin
                val_reg <= {FRAME_BITS{1'b0}};
            end
        end

        if (FRAME_FLAGS) begin : g_nz
            reg [CHANNELS-1:0] nz_reg = {CHANNELS{1'b0}}, nz_next;

            assign all_nz[fb*CHANNELS +: CHANNELS] = nz_reg;

            // a write sets the flag of a nonzero activation; a release clears it, and so does
            // a pop where the flags are stored (held flags are popped in the read register)
            always @* begin
                nz_next = nz_reg;
                for (c = 0; c < CHANNELS; c = c + 1) begin
                    if (wr_sel && wr_hit[c]) begin
                        nz_next[c] = wr_nz[c];
                    end
                    if (rd_sel && (rd_release || (STORE_FLAGS && pop_clear[c]))) begin
                        nz_next[c] = 1'b0;
                    end
                end
            end

            always @(posedge clk) begin
                nz_reg <= nz_next;
                if (rst) begin
                    nz_reg <= {CHANNELS{1'b0}};
                end
            end
        end else begin : g_derived
            assign all_nz[fb*CHANNELS +: CHANNELS] = {CHANNELS{1'b0}};
        end
    end
endgenerate

// the read frame's event flags
genvar n_i;
generate
    if (HOLD_FLAGS) begin : g_rd_held
        // writes of this cycle to the frame at the read pointer and to the one after it
        wire wr_at_rd = wr_en && (wr_ptr_reg == rd_ptr_reg);
        wire wr_at_inc = wr_en && (wr_ptr_reg == rd_ptr_inc_reg);
        wire [CHANNELS-1:0] inc_nz = all_nz[rd_ptr_inc_reg*CHANNELS +: CHANNELS];

        reg [CHANNELS-1:0] held_reg = {CHANNELS{1'b0}}, held_next;

        assign rd_nz = held_reg;

        // a release loads the next frame's flags, a pop clears one, a write to the read
        // frame (before it is complete) sets one
        always @* begin
            if (rd_frame_valid && rd_release) begin
                held_next = inc_nz | (wr_at_inc ? (wr_hit & wr_nz) : {CHANNELS{1'b0}});
            end else begin
                held_next = (held_reg & ~pop_clear) |
                            (wr_at_rd ? (wr_hit & wr_nz) : {CHANNELS{1'b0}});
            end
        end

        always @(posedge clk) begin
            if (rst) begin
                held_reg <= {CHANNELS{1'b0}};
            end else begin
                held_reg <= held_next;
            end
        end
    end else if (STORE_FLAGS) begin : g_rd_stored
        assign rd_nz = all_nz[rd_ptr_reg*CHANNELS +: CHANNELS];
    end else begin : g_rd_derived
        for (n_i = 0; n_i < CHANNELS; n_i = n_i + 1) begin : g_ch
            assign rd_nz[n_i] = |rd_val[n_i*BITS +: BITS];
        end
    end
endgenerate

always @* begin
    full_next = full_reg;
    wr_ptr_next = wr_ptr_reg;
    rd_ptr_next = rd_ptr_reg;
    rd_ptr_inc_next = rd_ptr_inc_reg;

    if (wr_done) begin
        full_next[wr_ptr_reg] = 1'b1;
        wr_ptr_next = (wr_ptr_reg == LAST_PTR[PTR_BITS-1:0]) ? {PTR_BITS{1'b0}} : wr_ptr_reg + 1'b1;
    end
    if (rd_frame_valid && rd_release) begin
        full_next[rd_ptr_reg] = 1'b0;
        rd_ptr_next = rd_ptr_inc_reg;
        rd_ptr_inc_next = (rd_ptr_inc_reg == LAST_PTR[PTR_BITS-1:0]) ? {PTR_BITS{1'b0}} :
                          rd_ptr_inc_reg + 1'b1;
    end
end

always @(posedge clk) begin
    full_reg <= full_next;
    wr_ptr_reg <= wr_ptr_next;
    rd_ptr_reg <= rd_ptr_next;
    rd_ptr_inc_reg <= rd_ptr_inc_next;

    if (rst) begin
        full_reg <= {NBUF{1'b0}};
        wr_ptr_reg <= {PTR_BITS{1'b0}};
        rd_ptr_reg <= {PTR_BITS{1'b0}};
        rd_ptr_inc_reg <= SECOND_PTR;
    end
end

endmodule

`resetall
