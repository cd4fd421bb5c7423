/*

pynq-neuro: datapath (row buffers, layers, frame buffers, argmax)

  px_* -> row buffer (pn_frame_buffer) -> pn_layer 0 -> pn_frame_buffer -> pn_layer 1
       -> ... -> pn_layer NUM_LAYERS-1 (classifier) -> pn_argmax -> res_*

Layer parameters come from packed vectors, 32 bits per layer, layer 0 least significant
(pass `PN_V_<FIELD> from neuro_params.vh).

Timing contract of the pixel side: px_ready high in a cycle means px_en is accepted in that
cycle; the 7 writes of a row may come in consecutive cycles (px_ready stays high while the
row is written) and px_row_done may come with the last write. The row can be processed
from the next cycle on. res_valid rises 2 cycles after the end of the classifier's
threshold phase (RESULT_LATENCY).

*/

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pn_net #
(
    // layers (1..8); the last one is the classifier
    parameter NUM_LAYERS = 1,
    // input activation bits (pixels shifted right by 8 - INPUT_BITS)
    parameter INPUT_BITS = 8,
    // hardware fields, 32 bits per layer, layer 0 in bits 31:0 (`PN_V_<FIELD> has
    // 32*NUM_LAYERS bits and is zero-extended here, hence no WIDTH lint on these lines)
    /* verilator lint_off WIDTH */
    parameter [32*8-1:0] V_IN_CHANNELS = 256'd28,
    parameter [32*8-1:0] V_OUT_CHANNELS = 256'd10,
    parameter [32*8-1:0] V_TAPS = 256'd28,
    parameter [32*8-1:0] V_STRIDE = 256'd1,
    parameter [32*8-1:0] V_IN_FRAMES = 256'd28,
    parameter [32*8-1:0] V_OUT_FRAMES = 256'd1,
    parameter [32*8-1:0] V_FRAMES_USED = 256'd28,
    parameter [32*8-1:0] V_FRAMES_EMITTED = 256'd1,
    parameter [32*8-1:0] V_WEIGHT_BITS = 256'd1,
    parameter [32*8-1:0] V_ACT_BITS = 256'd0,
    parameter [32*8-1:0] V_GROUPS = 256'd1,
    parameter [32*8-1:0] V_LANES = 256'd10,
    parameter [32*8-1:0] V_LOCALS = 256'd1,
    parameter [32*8-1:0] V_LOCAL_CHANNELS = 256'd28,
    parameter [32*8-1:0] V_LOCAL_BITS = 256'd0,
    parameter [32*8-1:0] V_ENTRY_BITS = 256'd2,
    parameter [32*8-1:0] V_WORD_BITS = 256'd20,
    parameter [32*8-1:0] V_ACC_BITS = 256'd16,
    parameter [32*8-1:0] V_LEVELS = 256'd1,
    parameter [32*8-1:0] V_PARAM_BITS = 256'd16,
    parameter [32*8-1:0] V_SYNAPSE_DEPTH = 256'd784,
    parameter [32*8-1:0] V_ADDR_BITS = 256'd10,
    parameter [32*8-1:0] V_COUNT_BITS = 256'd1,
    parameter [32*8-1:0] V_INDEX_BITS = 256'd11,
    parameter [32*8-1:0] V_INDEX_DEPTH = 256'd784,
    /* verilator lint_on WIDTH */
    // width of load_data (the widest memory word)
    parameter LOAD_BITS = 160,
    // width of a result logit (the classifier's accumulator width)
    parameter LOGIT_BITS = 16,
    // directory of the .mem images with a trailing "/", or "" for zeroed memories
    parameter MEM_DIR = ""
)
(
    input  wire                       clk,
    input  wire                       rst,

    /*
     * Input activations, one row (frame) at a time
     */
    output wire                       px_ready,
    input  wire                       px_en,
    input  wire [4:0]                 px_base,
    input  wire [4*INPUT_BITS-1:0]    px_data,
    input  wire                       px_row_done,

    /*
     * Results, one per digit
     */
    output wire                       res_valid,
    input  wire                       res_ready,
    output wire [3:0]                 res_class,
    output wire [10*LOGIT_BITS-1:0]   res_logits,

    /*
     * Memory load port
     */
    input  wire                       load_we,
    input  wire [2:0]                 load_layer,
    input  wire [1:0]                 load_kind,
    input  wire [7:0]                 load_bank,
    input  wire [15:0]                load_addr,
    input  wire [LOAD_BITS-1:0]       load_data,

    /*
     * Status
     */
    output wire                       busy
);

// BEGIN pn_limits: limits of neuro_core, generated from pynq_neuro/compiler/limits.py
// (python -m pynq_neuro.compiler.limits --write); do not edit by hand
/* verilator lint_off UNUSEDPARAM */
localparam integer LIMIT_MAX_LAYERS = 8;            // layers (load_layer[2:0], V_* vectors)
localparam integer LIMIT_LOAD_ADDR_BITS = 16;       // width of load_addr
localparam integer LIMIT_MAX_DEPTH = 65536;         // deepest memory the loader addresses
localparam integer LIMIT_MAX_GROUPS = 256;          // event groups (load_bank[7:0])
localparam integer LIMIT_MAX_WORD_BITS = 8192;      // widest loadable memory word
localparam integer LIMIT_BASE_BITS = 16;            // width of wr_base between the units
localparam integer LIMIT_MAX_CHANNELS = 65536;      // output units per layer
localparam integer LIMIT_LOGIT_BITS = 32;           // widest logit of the result stream
localparam integer LIMIT_NUM_CLASSES = 10;          // classes (logit beats)
localparam integer LIMIT_IMAGE_ROWS = 28;           // rows of a digit (frames of layer 0)
localparam integer LIMIT_IMAGE_COLS = 28;           // pixels of a row (channels of layer 0)
localparam integer LIMIT_MAX_INPUT_BITS = 8;        // input activation bits
localparam integer LIMIT_MAX_WEIGHT_BITS = 8;       // weight code bits
localparam integer LIMIT_MAX_ACT_BITS = 8;          // hidden activation bits
localparam integer LIMIT_IN_FLIGHT = 32;            // digits between input unit and formatter
/* verilator lint_on UNUSEDPARAM */
// END pn_limits

// ring sizes (cycle-model constants ROW_BUFFERS and FRAME_BUFFERS)
localparam ROW_BUFFERS = 2;
localparam FRAME_BUFFERS = 2;
// width of wr_base between the units
localparam BASE_BITS = LIMIT_BASE_BITS;

// parameter checks of the network (each pn_layer checks its own fields): a datapath that
// cannot work stops the simulation at time 0 and the synthesis with the message
initial begin
    if (NUM_LAYERS < 1 || NUM_LAYERS > LIMIT_MAX_LAYERS) begin
        $error("pn_net: NUM_LAYERS = %0d, the core holds 1..%0d layers", NUM_LAYERS,
               LIMIT_MAX_LAYERS);
        $finish;
    end
    if (INPUT_BITS < 1 || INPUT_BITS > LIMIT_MAX_INPUT_BITS) begin
        $error("pn_net: INPUT_BITS = %0d, the core takes 1..%0d", INPUT_BITS,
               LIMIT_MAX_INPUT_BITS);
        $finish;
    end
    if (V_IN_CHANNELS[31:0] != LIMIT_IMAGE_COLS || V_IN_FRAMES[31:0] != LIMIT_IMAGE_ROWS) begin
        $error("pn_net: layer 0 takes %0d channels x %0d frames, a digit is %0d x %0d",
               V_IN_CHANNELS[31:0], V_IN_FRAMES[31:0], LIMIT_IMAGE_COLS, LIMIT_IMAGE_ROWS);
        $finish;
    end
end

localparam HAVE_MEM = (MEM_DIR != "");

// widest per-layer buses
function integer max_groups;
    input integer layers;
    integer k;
    begin
        max_groups = 1;
        for (k = 0; k < layers; k = k + 1) begin
            if (V_GROUPS[32*k +: 32] > max_groups) max_groups = V_GROUPS[32*k +: 32];
        end
    end
endfunction

function integer max_ch_bits;
    input integer layers;
    integer k, b;
    begin
        max_ch_bits = 1;
        for (k = 0; k < layers; k = k + 1) begin
            b = $clog2(V_LOCAL_CHANNELS[32*k +: 32]);
            if (b > max_ch_bits) max_ch_bits = b;
        end
    end
endfunction

function integer max_act_bits;
    input integer layers;
    integer k;
    begin
        max_act_bits = INPUT_BITS;
        for (k = 0; k + 1 < layers; k = k + 1) begin
            if (V_ACT_BITS[32*k +: 32] > max_act_bits) max_act_bits = V_ACT_BITS[32*k +: 32];
        end
    end
endfunction

function integer max_wr_bits;
    input integer layers;
    integer k, b;
    begin
        max_wr_bits = 4*INPUT_BITS;
        for (k = 0; k + 1 < layers; k = k + 1) begin
            b = V_LANES[32*k +: 32] * V_ACT_BITS[32*k +: 32];
            if (b > max_wr_bits) max_wr_bits = b;
        end
    end
endfunction

localparam MAX_G = max_groups(NUM_LAYERS);
localparam MAX_CHB = max_ch_bits(NUM_LAYERS);
localparam MAX_BITS = max_act_bits(NUM_LAYERS);
localparam MAX_WR = max_wr_bits(NUM_LAYERS);

// write side of the frame buffer in front of layer i (i = 0: the row buffer)
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNDRIVEN */
wire [NUM_LAYERS-1:0]           fbw_ready;
wire [NUM_LAYERS-1:0]           fbw_en;
wire [NUM_LAYERS*BASE_BITS-1:0] fbw_base;
wire [NUM_LAYERS*MAX_WR-1:0]    fbw_data;
wire [NUM_LAYERS-1:0]           fbw_done;
// read side (events) of the frame buffer in front of layer i
wire [NUM_LAYERS-1:0]               fb_valid;
wire [NUM_LAYERS*MAX_G-1:0]         fb_ev_valid;
wire [NUM_LAYERS*MAX_G*MAX_CHB-1:0] fb_ev_channel;
wire [NUM_LAYERS*MAX_G*MAX_BITS-1:0] fb_ev_value;
wire [NUM_LAYERS*MAX_G-1:0]         fb_ev_pop;
wire [NUM_LAYERS-1:0]               fb_release;
/* verilator lint_on UNDRIVEN */
/* verilator lint_on UNUSEDSIGNAL */
wire [NUM_LAYERS-1:0]               layer_busy;
wire                                argmax_busy;

// a row is being written
reg px_active_reg = 1'b0, px_active_next;

assign px_ready = fbw_ready[0];
assign fbw_en[0] = px_en;
assign fbw_base[BASE_BITS-1:0] = {{(BASE_BITS-5){1'b0}}, px_base};
assign fbw_data[4*INPUT_BITS-1:0] = px_data;
assign fbw_done[0] = px_row_done;

assign busy = (|layer_busy) || (|fb_valid) || px_active_reg || argmax_busy;

always @* begin
    px_active_next = px_active_reg;
    if (px_en) begin
        px_active_next = 1'b1;
    end
    if (px_row_done) begin
        px_active_next = 1'b0;
    end
end

always @(posedge clk) begin
    px_active_reg <= px_active_next;
    if (rst) begin
        px_active_reg <= 1'b0;
    end
end

genvar i;
generate
    for (i = 0; i < NUM_LAYERS; i = i + 1) begin : g_layer
        localparam integer PREV = (i > 0) ? i - 1 : 0;
        localparam LAST = (i == NUM_LAYERS - 1);
        localparam integer C_I = i;
        localparam integer L_IN_CHANNELS = V_IN_CHANNELS[32*i +: 32];
        localparam integer L_OUT_CHANNELS = V_OUT_CHANNELS[32*i +: 32];
        localparam integer L_TAPS = V_TAPS[32*i +: 32];
        localparam integer L_STRIDE = V_STRIDE[32*i +: 32];
        localparam integer L_IN_FRAMES = V_IN_FRAMES[32*i +: 32];
        localparam integer L_OUT_FRAMES = V_OUT_FRAMES[32*i +: 32];
        localparam integer L_FRAMES_USED = V_FRAMES_USED[32*i +: 32];
        localparam integer L_FRAMES_EMITTED = V_FRAMES_EMITTED[32*i +: 32];
        localparam integer L_WEIGHT_BITS = V_WEIGHT_BITS[32*i +: 32];
        localparam integer L_ACT_BITS = V_ACT_BITS[32*i +: 32];
        localparam integer L_GROUPS = V_GROUPS[32*i +: 32];
        localparam integer L_LANES = V_LANES[32*i +: 32];
        localparam integer L_LOCALS = V_LOCALS[32*i +: 32];
        localparam integer L_LOCAL_CHANNELS = V_LOCAL_CHANNELS[32*i +: 32];
        localparam integer L_LOCAL_BITS = V_LOCAL_BITS[32*i +: 32];
        localparam integer L_ENTRY_BITS = V_ENTRY_BITS[32*i +: 32];
        localparam integer L_WORD_BITS = V_WORD_BITS[32*i +: 32];
        localparam integer L_ACC_BITS = V_ACC_BITS[32*i +: 32];
        localparam integer L_LEVELS = V_LEVELS[32*i +: 32];
        localparam integer L_PARAM_BITS = V_PARAM_BITS[32*i +: 32];
        localparam integer L_SYNAPSE_DEPTH = V_SYNAPSE_DEPTH[32*i +: 32];
        localparam integer L_ADDR_BITS = V_ADDR_BITS[32*i +: 32];
        localparam integer L_COUNT_BITS = V_COUNT_BITS[32*i +: 32];
        localparam integer L_INDEX_BITS = V_INDEX_BITS[32*i +: 32];
        localparam integer L_INDEX_DEPTH = V_INDEX_DEPTH[32*i +: 32];
        // input activations: pixels for layer 0, else the previous layer's outputs
        localparam integer L_IN_BITS = (i == 0) ? INPUT_BITS : V_ACT_BITS[32*PREV +: 32];
        localparam integer FB_WR_WIDTH = (i == 0) ? 4 : V_LANES[32*PREV +: 32];
        localparam integer L_CH_BITS = (L_LOCAL_CHANNELS > 1) ? $clog2(L_LOCAL_CHANNELS) : 1;
        localparam integer L_OUT_BITS = LAST ? L_ACC_BITS : L_ACT_BITS;
        // "<MEM_DIR>L<i>_"
        localparam integer C_DIGIT = 48 + i;
        localparam LAYER_PREFIX = {MEM_DIR, "L", C_DIGIT[7:0], "_"};

        // the chain: this layer takes what the previous one emits; the last is the classifier
        initial begin
            if (i > 0 && (L_IN_CHANNELS != V_OUT_CHANNELS[32*PREV +: 32] ||
                          L_IN_FRAMES != V_OUT_FRAMES[32*PREV +: 32])) begin
                $error("pn_net: layer %0d takes %0d channels x %0d frames, layer %0d emits %0d x %0d",
                       i, L_IN_CHANNELS, L_IN_FRAMES, PREV, V_OUT_CHANNELS[32*PREV +: 32],
                       V_OUT_FRAMES[32*PREV +: 32]);
                $finish;
            end
            if (i > 0 && L_FRAMES_USED > V_FRAMES_EMITTED[32*PREV +: 32]) begin
                $error("pn_net: layer %0d uses %0d frames, layer %0d emits %0d", i,
                       L_FRAMES_USED, PREV, V_FRAMES_EMITTED[32*PREV +: 32]);
                $finish;
            end
            if (LAST && (L_ACT_BITS != 0 || L_OUT_CHANNELS != LIMIT_NUM_CLASSES ||
                         L_FRAMES_EMITTED != 1)) begin
                $error("pn_net: the classifier (layer %0d) has ACT_BITS = %0d, %0d outputs, %0d frames; expected 0, %0d, 1",
                       i, L_ACT_BITS, L_OUT_CHANNELS, L_FRAMES_EMITTED, LIMIT_NUM_CLASSES);
                $finish;
            end
            if (LAST && (LOGIT_BITS < L_ACC_BITS || LOGIT_BITS > LIMIT_LOGIT_BITS)) begin
                $error("pn_net: LOGIT_BITS = %0d, the classifier's ACC_BITS is %0d (at most %0d)",
                       LOGIT_BITS, L_ACC_BITS, LIMIT_LOGIT_BITS);
                $finish;
            end
        end

        wire l_wr_ready;
        wire l_wr_en;
        wire [BASE_BITS-1:0] l_wr_base;
        wire [L_LANES*L_OUT_BITS-1:0] l_wr_data;
        wire l_wr_done;

        pn_frame_buffer #(
            .CHANNELS(L_IN_CHANNELS),
            .BITS(L_IN_BITS),
            .NBUF((i == 0) ? ROW_BUFFERS : FRAME_BUFFERS),
            .GROUPS(L_GROUPS),
            .WR_WIDTH(FB_WR_WIDTH),
            .BASE_BITS(BASE_BITS),
            .CH_BITS(L_CH_BITS)
        )
        fb_inst (
            .clk(clk),
            .rst(rst),
            .wr_ready(fbw_ready[i]),
            .wr_en(fbw_en[i]),
            .wr_base(fbw_base[BASE_BITS*i +: BASE_BITS]),
            .wr_data(fbw_data[MAX_WR*i +: FB_WR_WIDTH*L_IN_BITS]),
            .wr_done(fbw_done[i]),
            .rd_frame_valid(fb_valid[i]),
            .ev_valid(fb_ev_valid[MAX_G*i +: L_GROUPS]),
            .ev_channel(fb_ev_channel[MAX_G*MAX_CHB*i +: L_GROUPS*L_CH_BITS]),
            .ev_value(fb_ev_value[MAX_G*MAX_BITS*i +: L_GROUPS*L_IN_BITS]),
            .ev_pop(fb_ev_pop[MAX_G*i +: L_GROUPS]),
            .rd_release(fb_release[i])
        );

        pn_layer #(
            .IN_CHANNELS(L_IN_CHANNELS),
            .OUT_CHANNELS(L_OUT_CHANNELS),
            .TAPS(L_TAPS),
            .STRIDE(L_STRIDE),
            .IN_FRAMES(L_IN_FRAMES),
            .OUT_FRAMES(L_OUT_FRAMES),
            .FRAMES_USED(L_FRAMES_USED),
            .FRAMES_EMITTED(L_FRAMES_EMITTED),
            .WEIGHT_BITS(L_WEIGHT_BITS),
            .ACT_BITS(L_ACT_BITS),
            .GROUPS(L_GROUPS),
            .LANES(L_LANES),
            .LOCALS(L_LOCALS),
            .LOCAL_CHANNELS(L_LOCAL_CHANNELS),
            .LOCAL_BITS(L_LOCAL_BITS),
            .ENTRY_BITS(L_ENTRY_BITS),
            .WORD_BITS(L_WORD_BITS),
            .ACC_BITS(L_ACC_BITS),
            .LEVELS(L_LEVELS),
            .PARAM_BITS(L_PARAM_BITS),
            .SYNAPSE_DEPTH(L_SYNAPSE_DEPTH),
            .ADDR_BITS(L_ADDR_BITS),
            .COUNT_BITS(L_COUNT_BITS),
            .INDEX_BITS(L_INDEX_BITS),
            .INDEX_DEPTH(L_INDEX_DEPTH),
            .IN_BITS(L_IN_BITS),
            .IS_CLASSIFIER(LAST ? 1 : 0),
            .MEM_PREFIX(HAVE_MEM ? LAYER_PREFIX : ""),
            .LOAD_BITS(LOAD_BITS),
            .BASE_BITS(BASE_BITS),
            .CH_BITS(L_CH_BITS),
            .OUT_BITS(L_OUT_BITS)
        )
        layer_inst (
            .clk(clk),
            .rst(rst),
            .rd_frame_valid(fb_valid[i]),
            .ev_valid(fb_ev_valid[MAX_G*i +: L_GROUPS]),
            .ev_channel(fb_ev_channel[MAX_G*MAX_CHB*i +: L_GROUPS*L_CH_BITS]),
            .ev_value(fb_ev_value[MAX_G*MAX_BITS*i +: L_GROUPS*L_IN_BITS]),
            .ev_pop(fb_ev_pop[MAX_G*i +: L_GROUPS]),
            .rd_release(fb_release[i]),
            .wr_ready(l_wr_ready),
            .wr_en(l_wr_en),
            .wr_base(l_wr_base),
            .wr_data(l_wr_data),
            .wr_done(l_wr_done),
            .load_we(load_we && load_layer == C_I[2:0]),
            .load_kind(load_kind),
            .load_bank(load_bank),
            .load_addr(load_addr),
            .load_data(load_data),
            .busy(layer_busy[i])
        );

        if (!LAST) begin : g_next
            assign l_wr_ready = fbw_ready[i+1];
            assign fbw_en[i+1] = l_wr_en;
            assign fbw_base[BASE_BITS*(i+1) +: BASE_BITS] = l_wr_base;
            assign fbw_data[MAX_WR*(i+1) +: L_LANES*L_OUT_BITS] = l_wr_data;
            assign fbw_done[i+1] = l_wr_done;
        end else begin : g_argmax
            pn_argmax #(
                .NUM_CLASSES(10),
                .LANES(L_LANES),
                .IN_BITS(L_ACC_BITS),
                .LOGIT_BITS(LOGIT_BITS),
                .BASE_BITS(BASE_BITS),
                .CLASS_BITS(4)
            )
            argmax_inst (
                .clk(clk),
                .rst(rst),
                .in_ready(l_wr_ready),
                .in_valid(l_wr_en),
                .in_base(l_wr_base),
                .in_data(l_wr_data),
                .in_last(l_wr_done),
                .res_valid(res_valid),
                .res_ready(res_ready),
                .res_class(res_class),
                .res_logits(res_logits),
                .busy(argmax_busy)
            );
        end
    end
endgenerate

endmodule

`resetall
