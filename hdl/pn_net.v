/*

pynq-neuro: datapath (row buffers, layers, frame buffers, argmax)

  px_* -> row buffer (pn_frame_buffer) -> pn_layer 0 -> pn_frame_buffer -> pn_layer 1
       -> ... -> pn_layer NUM_LAYERS-1 (classifier) -> pn_argmax -> res_*

The network is the artifact's: its fields come from the packed vectors of neuro_params.vh
(`PN_V_<FIELD>, 32 bits per layer, layer 0 least significant). Each pn_layer takes the fields
that define it and derives the rest; the derived fields of the header are checked against it.

Timing contract of the pixel side: px_ready high in a cycle means px_en is accepted in that
cycle; the writes of a row (28 / PIXELS_PER_BEAT rounded up) may come in consecutive cycles
(px_ready stays high while the row is written) and px_row_done may come with the last write.
The row can be processed from the next cycle on. res_valid rises 2 cycles after the end of
the classifier's threshold phase (RESULT_LATENCY).

*/

`include "pn_prelude.vh"

// The network's fields come from the artifact's neuro_params.vh (`PN_V_<FIELD>, 32 bits per
// layer, zero-extended to the 8-layer width, hence no WIDTH lint in this module).
`include "neuro_params.vh"

/* verilator lint_off WIDTH */
module pn_net #
(
    // layers (1..8); the last one is the classifier; keep the default
    parameter NUM_LAYERS = `PN_NUM_LAYERS,
    // input activation bits (pixels shifted right by 8 - INPUT_BITS); keep the default
    parameter INPUT_BITS = `PN_INPUT_BITS,
    // pixels of a row write (pn_input's beat); keep the default
    parameter PIXELS_PER_BEAT = `PN_PIXELS_PER_BEAT(`PN_PACKED_PIXELS, `PN_INPUT_BITS),
    // width of load_data (the widest memory word); keep the default
    parameter LOAD_BITS = `PN_LOAD_BITS,
    // width of a result logit (the classifier's accumulator width); keep the default
    parameter LOGIT_BITS = `PN_LOGIT_BITS,
    // directory of the .mem images with a trailing "/", or "" for zeroed memories
    parameter MEM_DIR = ""
)
(
    input  wire                       clk,
    input  wire                       rst,

    /*
     * Input activations, one row (frame) at a time
     */
    `PN_PX_PORTS(output, input),

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
    `PN_LOAD_PORTS(input),

    /*
     * Status
     */
    output wire                       busy
);
/* verilator lint_on WIDTH */

// limits of the core and the derived fields of a layer
`include "pn_limits.vh"

// ring sizes (cycle-model constants ROW_BUFFERS, FRAME_BUFFERS and FIRST_FRAME_BUFFERS): rows
// in front of layer 0, output frames between layers, and one frame more behind layer 0, which
// runs with the pixel stream and so absorbs the uneven frames of the layers after it
localparam ROW_BUFFERS = 2;
localparam FRAME_BUFFERS = 2;
localparam FIRST_FRAME_BUFFERS = 3;
// width of wr_base between the units
localparam BASE_BITS = LIMIT_BASE_BITS;

// the packed vectors of neuro_params.vh (`PN_V_<FIELD>) have 32 bits per synthesized layer
// and are zero-extended to the 8-layer width of pn_field
/* verilator lint_off WIDTH */

// parameter checks of the network (each pn_layer checks its own fields): a datapath that
// cannot work stops the simulation at time 0 and the synthesis with the message
initial begin
    if (NUM_LAYERS < 1 || NUM_LAYERS > LIMIT_MAX_LAYERS)
        `PN_STOP(("pn_net: NUM_LAYERS = %0d, the core holds 1..%0d layers", NUM_LAYERS,
                  LIMIT_MAX_LAYERS))
    if (INPUT_BITS < 1 || INPUT_BITS > LIMIT_MAX_INPUT_BITS)
        `PN_STOP(("pn_net: INPUT_BITS = %0d, the core takes 1..%0d", INPUT_BITS,
                  LIMIT_MAX_INPUT_BITS))
    if (PIXELS_PER_BEAT < 1 || PIXELS_PER_BEAT > LIMIT_IMAGE_COLS ||
            PIXELS_PER_BEAT * INPUT_BITS > 32)
        `PN_STOP(("pn_net: PIXELS_PER_BEAT = %0d, a beat holds 32 bits of %0d-bit pixels and a row %0d pixels",
                  PIXELS_PER_BEAT, INPUT_BITS, LIMIT_IMAGE_COLS))
    if (pn_field(`PN_V_IN_CHANNELS, 0) != LIMIT_IMAGE_COLS || pn_field(`PN_V_IN_FRAMES, 0) != LIMIT_IMAGE_ROWS)
        `PN_STOP(("pn_net: layer 0 takes %0d channels x %0d frames, a digit is %0d x %0d",
                  pn_field(`PN_V_IN_CHANNELS, 0), pn_field(`PN_V_IN_FRAMES, 0), LIMIT_IMAGE_COLS, LIMIT_IMAGE_ROWS))
    // the cycle model the artifact was compiled with must be this core's
    if (`PN_ROW_BUFFERS != ROW_BUFFERS || `PN_FRAME_BUFFERS != FRAME_BUFFERS ||
            `PN_FIRST_FRAME_BUFFERS != FIRST_FRAME_BUFFERS)
        `PN_STOP(("pn_net: neuro_params.vh assumes rings of %0d rows, %0d frames and %0d frames behind layer 0, the core has %0d, %0d and %0d",
                  `PN_ROW_BUFFERS, `PN_FRAME_BUFFERS, `PN_FIRST_FRAME_BUFFERS, ROW_BUFFERS,
                  FRAME_BUFFERS, FIRST_FRAME_BUFFERS))
end

`ifdef PN_INPUT_ROWS
// the image rows the network declares it reads: exactly what the layers' taps and strides
// consume (from the classifier's output frames back to the image), all of them handled by
// layer 0 (networks written before the declaration have no PN_INPUT_ROWS)
function integer rows_read;
    input integer layers;
    integer l, u;
    begin
        u = pn_field(`PN_V_OUT_FRAMES, layers - 1);
        for (l = layers - 1; l >= 0; l = l - 1)
            u = (u - 1) * pn_field(`PN_V_STRIDE, l) + pn_field(`PN_V_TAPS, l);
        rows_read = u;
    end
endfunction

localparam integer ROWS_DECLARED = `PN_INPUT_ROWS;
localparam integer ROWS_READ = rows_read(NUM_LAYERS);
localparam integer ROWS_HANDLED = pn_field(`PN_V_FRAMES_USED, 0);

initial begin
    if (ROWS_DECLARED < 1 || ROWS_DECLARED > LIMIT_IMAGE_ROWS || ROWS_DECLARED != ROWS_READ ||
            ROWS_HANDLED < ROWS_DECLARED)
        `PN_STOP(("pn_net: PN_INPUT_ROWS = %0d in neuro_params.vh, the layers read %0d rows, layer 0 handles %0d (FRAMES_USED)",
                  ROWS_DECLARED, ROWS_READ, ROWS_HANDLED))
end
`endif

localparam HAVE_MEM = (MEM_DIR != "");

// names of the derived fields (index 10 first, in the order of the header check below)
function [8*14-1:0] derived_name;
    input integer d;
    begin
        case (d)
            10: derived_name = "OUT_FRAMES";
            9: derived_name = "LOCALS";
            8: derived_name = "LOCAL_CHANNELS";
            7: derived_name = "LOCAL_BITS";
            6: derived_name = "ENTRY_BITS";
            5: derived_name = "WORD_BITS";
            4: derived_name = "LEVELS";
            3: derived_name = "PARAM_BITS";
            2: derived_name = "ADDR_BITS";
            1: derived_name = "INDEX_BITS";
            default: derived_name = "INDEX_DEPTH";
        endcase
    end
endfunction

// widest per-layer buses
function integer max_groups;
    input integer layers;
    integer k;
    begin
        max_groups = 1;
        for (k = 0; k < layers; k = k + 1) begin
            if (pn_field(`PN_V_GROUPS, k) > max_groups) max_groups = pn_field(`PN_V_GROUPS, k);
        end
    end
endfunction

function integer max_ch_bits;
    input integer layers;
    integer k, b;
    begin
        max_ch_bits = 1;
        for (k = 0; k < layers; k = k + 1) begin
            b = $clog2(pn_local_channels(pn_field(`PN_V_IN_CHANNELS, k), pn_field(`PN_V_GROUPS, k)));
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
            if (pn_field(`PN_V_ACT_BITS, k) > max_act_bits) max_act_bits = pn_field(`PN_V_ACT_BITS, k);
        end
    end
endfunction

function integer max_wr_bits;
    input integer layers;
    integer k, b;
    begin
        max_wr_bits = PIXELS_PER_BEAT*INPUT_BITS;
        for (k = 0; k + 1 < layers; k = k + 1) begin
            b = pn_field(`PN_V_LANES, k) * pn_field(`PN_V_ACT_BITS, k);
            if (b > max_wr_bits) max_wr_bits = b;
        end
    end
endfunction

/* verilator lint_on WIDTH */

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
assign fbw_data[PIXELS_PER_BEAT*INPUT_BITS-1:0] = px_data;
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
        // the fields that define the layer
        /* verilator lint_off WIDTH */
        localparam integer L_IN_CHANNELS = pn_field(`PN_V_IN_CHANNELS, i);
        localparam integer L_OUT_CHANNELS = pn_field(`PN_V_OUT_CHANNELS, i);
        localparam integer L_TAPS = pn_field(`PN_V_TAPS, i);
        localparam integer L_STRIDE = pn_field(`PN_V_STRIDE, i);
        localparam integer L_IN_FRAMES = pn_field(`PN_V_IN_FRAMES, i);
        localparam integer L_FRAMES_USED = pn_field(`PN_V_FRAMES_USED, i);
        localparam integer L_FRAMES_EMITTED = pn_field(`PN_V_FRAMES_EMITTED, i);
        localparam integer L_WEIGHT_BITS = pn_field(`PN_V_WEIGHT_BITS, i);
        localparam integer L_ACT_BITS = pn_field(`PN_V_ACT_BITS, i);
        localparam integer L_GROUPS = pn_field(`PN_V_GROUPS, i);
        localparam integer L_LANES = pn_field(`PN_V_LANES, i);
        localparam integer L_ACC_BITS = pn_field(`PN_V_ACC_BITS, i);
        localparam integer L_SYNAPSE_DEPTH = pn_field(`PN_V_SYNAPSE_DEPTH, i);
        localparam integer L_COUNT_BITS = pn_field(`PN_V_COUNT_BITS, i);
        /* verilator lint_on WIDTH */
        /* verilator lint_off WIDTH */
        // input activations: pixels for layer 0, else the previous layer's outputs
        localparam integer L_IN_BITS = (i == 0) ? INPUT_BITS : pn_field(`PN_V_ACT_BITS, PREV);
        localparam integer FB_WR_WIDTH = (i == 0) ? PIXELS_PER_BEAT : pn_field(`PN_V_LANES, PREV);
        localparam integer L_CH_BITS = pn_index_width(pn_local_channels(L_IN_CHANNELS, L_GROUPS));
        localparam integer L_OUT_BITS = LAST ? L_ACC_BITS : L_ACT_BITS;
        // "<MEM_DIR>L<i>_"
        localparam integer C_DIGIT = 48 + i;
        localparam LAYER_PREFIX = {MEM_DIR, "L", C_DIGIT[7:0], "_"};

        // the derived fields of the header are what the layer derives from the others
        localparam [11*32-1:0] D_HEADER = {
            pn_field(`PN_V_OUT_FRAMES, i), pn_field(`PN_V_LOCALS, i),
            pn_field(`PN_V_LOCAL_CHANNELS, i), pn_field(`PN_V_LOCAL_BITS, i),
            pn_field(`PN_V_ENTRY_BITS, i), pn_field(`PN_V_WORD_BITS, i),
            pn_field(`PN_V_LEVELS, i), pn_field(`PN_V_PARAM_BITS, i),
            pn_field(`PN_V_ADDR_BITS, i), pn_field(`PN_V_INDEX_BITS, i),
            pn_field(`PN_V_INDEX_DEPTH, i)};
        localparam integer D_ENTRY = pn_entry_bits(L_OUT_CHANNELS, L_LANES, L_WEIGHT_BITS);
        localparam integer D_LEVELS = pn_levels(L_ACT_BITS, LAST ? 1 : 0);
        localparam integer D_ADDR = pn_index_width(L_SYNAPSE_DEPTH);
        localparam [11*32-1:0] D_DERIVED = {
            pn_out_frames(L_IN_FRAMES, L_TAPS, L_STRIDE), pn_locals(L_OUT_CHANNELS, L_LANES),
            pn_local_channels(L_IN_CHANNELS, L_GROUPS), pn_local_bits(L_OUT_CHANNELS, L_LANES),
            D_ENTRY, L_LANES * D_ENTRY, D_LEVELS, D_LEVELS * L_ACC_BITS, D_ADDR,
            L_COUNT_BITS + D_ADDR, pn_index_depth(L_TAPS, L_IN_CHANNELS, L_GROUPS)};
        integer d;
        initial begin
            for (d = 10; d >= 0; d = d - 1) begin
                if (D_HEADER[32*d +: 32] != D_DERIVED[32*d +: 32])
                    `PN_STOP(("pn_net: layer %0d: %0s = %0d in neuro_params.vh, %0d from the other fields",
                              i, derived_name(d), D_HEADER[32*d +: 32], D_DERIVED[32*d +: 32]))
            end
        end

        // the chain: this layer takes what the previous one emits; the last is the classifier
        initial begin
            if (i > 0 && (L_IN_CHANNELS != pn_field(`PN_V_OUT_CHANNELS, PREV) ||
                          L_IN_FRAMES != pn_field(`PN_V_OUT_FRAMES, PREV)))
                `PN_STOP(("pn_net: layer %0d takes %0d channels x %0d frames, layer %0d emits %0d x %0d",
                          i, L_IN_CHANNELS, L_IN_FRAMES, PREV, pn_field(`PN_V_OUT_CHANNELS, PREV),
                          pn_field(`PN_V_OUT_FRAMES, PREV)))
            if (i > 0 && L_FRAMES_USED > pn_field(`PN_V_FRAMES_EMITTED, PREV))
                `PN_STOP(("pn_net: layer %0d uses %0d frames, layer %0d emits %0d", i,
                          L_FRAMES_USED, PREV, pn_field(`PN_V_FRAMES_EMITTED, PREV)))
            if (LAST && (L_ACT_BITS != 0 || L_OUT_CHANNELS != LIMIT_NUM_CLASSES ||
                         L_FRAMES_EMITTED != 1))
                `PN_STOP(("pn_net: the classifier (layer %0d) has ACT_BITS = %0d, %0d outputs, %0d frames; expected 0, %0d, 1",
                          i, L_ACT_BITS, L_OUT_CHANNELS, L_FRAMES_EMITTED, LIMIT_NUM_CLASSES))
            if (LAST && (LOGIT_BITS < L_ACC_BITS || LOGIT_BITS > LIMIT_LOGIT_BITS))
                `PN_STOP(("pn_net: LOGIT_BITS = %0d, the classifier's ACC_BITS is %0d (at most %0d)",
                          LOGIT_BITS, L_ACC_BITS, LIMIT_LOGIT_BITS))
        end

        /* verilator lint_on WIDTH */

        wire l_wr_ready;
        wire l_wr_en;
        wire [BASE_BITS-1:0] l_wr_base;
        wire [L_LANES*L_OUT_BITS-1:0] l_wr_data;
        wire l_wr_done;

        pn_frame_buffer #(
            .CHANNELS(L_IN_CHANNELS),
            .BITS(L_IN_BITS),
            .NBUF((i == 0) ? ROW_BUFFERS : (i == 1) ? FIRST_FRAME_BUFFERS : FRAME_BUFFERS),
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
            .FRAMES_USED(L_FRAMES_USED),
            .FRAMES_EMITTED(L_FRAMES_EMITTED),
            .WEIGHT_BITS(L_WEIGHT_BITS),
            .ACT_BITS(L_ACT_BITS),
            .GROUPS(L_GROUPS),
            .LANES(L_LANES),
            .ACC_BITS(L_ACC_BITS),
            .SYNAPSE_DEPTH(L_SYNAPSE_DEPTH),
            .COUNT_BITS(L_COUNT_BITS),
            .IN_BITS(L_IN_BITS),
            .IS_CLASSIFIER(LAST ? 1 : 0),
            .MEM_PREFIX(HAVE_MEM ? LAYER_PREFIX : ""),
            .LOAD_BITS(LOAD_BITS),
            .BASE_BITS(BASE_BITS)
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
                .BASE_BITS(BASE_BITS)
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
