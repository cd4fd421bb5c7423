/*
 * neuro_core: event-driven TDNN accelerator with AXI4-Stream and AXI4-Lite interfaces.
 *
 * s_axis   pixels (196 beats of four bytes per digit, or with PACKED_PIXELS the pixels packed at
 *          INPUT_BITS bits, see pn_input; packets of up to BATCH digits, TLAST on the last beat
 *          of a packet) or, with LOAD_MODE, a network.bin load stream (pn_loader); a register
 *          slice decouples s_axis_tready
 * m_axis   results: beat 0 {digit counter[15:0], 12'b0, class[3:0]}, with LOGITS_ENABLE ten
 *          more beats, each a logit sign-extended to 32 bits; TLAST on the last beat of the
 *          result of the digit that ended an input packet (so one DMA transfer of N digits
 *          gives one result packet). The digit counter counts results since reset or
 *          CLEAR_COUNTERS.
 * s_axil   registers (pn_axil_regs)
 *
 * Behaviour around the datapath (pn_net):
 *  - a short frame (error 1) stops the input, lets the complete digits before it produce their
 *    results, then resets the datapath (weights are kept) and waits until it has cleared its
 *    accumulators before the next digit is taken;
 *  - a long frame or a missing TLAST (error 2) keeps the digit and drops beats up to TLAST;
 *  - a load stream (s_axis with LOAD_MODE, or LOAD_DATA writes) starts only when no digit is in
 *    the core; while it runs no new digit is accepted. LOAD_MODE is meant to change between
 *    digits only;
 *  - SOFT_RESET clears the input unit, loader and datapath; a result already being sent on
 *    m_axis is completed so that no packet is cut short.
 *
 * The network is the artifact's: the core and its units read its neuro_params.vh (the layers,
 * input bits, pixel stream, word widths, fingerprint and format version, and the packed
 * per-layer fields `PN_V_<FIELD>). The one parameter, MEM_DIR (default: the macro PN_MEM_DIR,
 * else ""), points to the artifact's mem/ images.
 */

`include "pn_prelude.vh"
`include "neuro_params.vh"

`ifdef PN_MEM_DIR
`define PN_CORE_MEM_DIR `PN_MEM_DIR
`else
`define PN_CORE_MEM_DIR ""
`endif

module neuro_core #
(
    // directory of the $readmemh images with a trailing "/" ("": memories start at zero)
    parameter MEM_DIR = `PN_CORE_MEM_DIR
)
(
    input  wire         clk,
    input  wire         rst,

    // pixels or load stream
    input  wire [31:0]  s_axis_tdata,
    input  wire         s_axis_tvalid,
    output wire         s_axis_tready,
    input  wire         s_axis_tlast,

    // results
    output wire [31:0]  m_axis_tdata,
    output wire         m_axis_tvalid,
    input  wire         m_axis_tready,
    output wire         m_axis_tlast,

    // registers
    input  wire [11:0]  s_axil_awaddr,
    input  wire [2:0]   s_axil_awprot,
    input  wire         s_axil_awvalid,
    output wire         s_axil_awready,
    input  wire [31:0]  s_axil_wdata,
    input  wire [3:0]   s_axil_wstrb,
    input  wire         s_axil_wvalid,
    output wire         s_axil_wready,
    output wire [1:0]   s_axil_bresp,
    output wire         s_axil_bvalid,
    input  wire         s_axil_bready,
    input  wire [11:0]  s_axil_araddr,
    input  wire [2:0]   s_axil_arprot,
    input  wire         s_axil_arvalid,
    output wire         s_axil_arready,
    output wire [31:0]  s_axil_rdata,
    output wire [1:0]   s_axil_rresp,
    output wire         s_axil_rvalid,
    input  wire         s_axil_rready
);

// the network (the artifact's neuro_params.vh, the one source of these values)
// number of layers (1..8)
localparam NUM_LAYERS = `PN_NUM_LAYERS;
// input activation bits (pixel >> (8 - INPUT_BITS))
localparam INPUT_BITS = `PN_INPUT_BITS;
// pixel stream: 0 four 8-bit pixels a beat, 1 packed at INPUT_BITS bits by the host
localparam PACKED_PIXELS = `PN_PACKED_PIXELS;
// width of the load data port (widest memory word)
localparam LOAD_BITS = `PN_LOAD_BITS;
// width of a logit
localparam LOGIT_BITS = `PN_LOGIT_BITS;

// limits of the core and the derived fields of a layer
`include "pn_limits.vh"

// classes (logit beats)
localparam NUM_CLASSES = LIMIT_NUM_CLASSES;
// the packed vectors of neuro_params.vh (`PN_V_<FIELD>) have 32 bits per synthesized layer
// and are zero-extended to the 8-layer width of pn_field
/* verilator lint_off WIDTH */
// rows of layer 0 that reach the network
localparam FRAMES_USED_0 = pn_field(`PN_V_FRAMES_USED, 0);
// pixels of an s_axis beat
localparam PIXELS_PER_BEAT = `PN_PIXELS_PER_BEAT(PACKED_PIXELS, INPUT_BITS);
// digits that can be between the input unit and the result formatter (a power of two, more
// than the datapath can hold: each layer holds at most a digit and its frame buffer two more)
localparam IN_FLIGHT = LIMIT_IN_FLIGHT;
// the last beat of a result with logits (beat 0 is the class)
localparam integer C_LAST_BEAT = NUM_CLASSES;
// the classifier's fields and the widest memory word
localparam integer LAST = (NUM_LAYERS >= 1 && NUM_LAYERS <= LIMIT_MAX_LAYERS) ? NUM_LAYERS - 1 : 0;
localparam integer LAST_ACC_BITS = pn_field(`PN_V_ACC_BITS, LAST);

function integer widest_word;
    input integer layers;
    integer l, w;
    begin
        widest_word = 0;
        for (l = 0; l < layers && l < LIMIT_MAX_LAYERS; l = l + 1) begin
            w = pn_field(`PN_V_WORD_BITS, l);
            if (pn_field(`PN_V_INDEX_BITS, l) > w) w = pn_field(`PN_V_INDEX_BITS, l);
            if (pn_field(`PN_V_LANES, l) * pn_field(`PN_V_PARAM_BITS, l) > w) begin
                w = pn_field(`PN_V_LANES, l) * pn_field(`PN_V_PARAM_BITS, l);
            end
            if (w > widest_word) widest_word = w;
        end
    end
endfunction

localparam integer WIDEST_WORD = widest_word(NUM_LAYERS);

// ---------------------------------------------------------------------------------------------
// parameter checks of the shell: a core that cannot work stops the simulation at time 0
// (Icarus, Verilator) and the synthesis (Yosys, Vivado) with the message. The network's own
// checks (layers, input bits, image size, the classifier's outputs) are pn_net's.

initial begin
    if (LOGIT_BITS != LAST_ACC_BITS)
        `PN_STOP(("neuro_core: LOGIT_BITS = %0d, the classifier's ACC_BITS is %0d", LOGIT_BITS,
                  LAST_ACC_BITS))
    if (LOAD_BITS != WIDEST_WORD || LOAD_BITS > LIMIT_MAX_WORD_BITS)
        `PN_STOP(("neuro_core: LOAD_BITS = %0d, the widest memory word is %0d bits (at most %0d)",
                  LOAD_BITS, WIDEST_WORD, LIMIT_MAX_WORD_BITS))
    // a digit in each layer and one in each of its output frames (three behind layer 0), two
    // in the row buffers and the input unit, two in pn_argmax, one in the formatter
    if (3 * NUM_LAYERS + 6 > IN_FLIGHT)
        `PN_STOP(("neuro_core: IN_FLIGHT = %0d is too small for %0d layers", IN_FLIGHT, NUM_LAYERS))
end

/* verilator lint_on WIDTH */

// ---------------------------------------------------------------------------------------------
// control

wire        soft_reset;
wire        clear_counters;
wire        logits_enable;
wire        load_mode;
wire        clear_error;
wire [15:0] batch;
wire [31:0] lite_data;
wire        lite_valid;
wire        lite_ready;

// reset of the input side and loader: module reset or SOFT_RESET (registered)
reg soft_rst_reg = 1'b1;
always @(posedge clk) begin
    soft_rst_reg <= rst || soft_reset;
end

// ---------------------------------------------------------------------------------------------
// s_axis: register slice, then pixels to the input unit or load words to the loader

wire [31:0] in_tdata;
wire        in_tlast;
wire        in_tvalid;
wire        in_tready;

pn_skid_buffer #(
    .DATA_WIDTH(33)
)
in_skid_inst (
    .clk(clk),
    .rst(soft_rst_reg),
    .s_data({s_axis_tlast, s_axis_tdata}),
    .s_valid(s_axis_tvalid),
    .s_ready(s_axis_tready),
    .m_data({in_tlast, in_tdata}),
    .m_valid(in_tvalid),
    .m_ready(in_tready)
);

wire px_tready;
wire ld_tready;
assign in_tready = load_mode ? ld_tready : px_tready;

// ---------------------------------------------------------------------------------------------
// input unit

wire                    px_ready;
wire                    px_en;
wire [4:0]              px_base;
wire [PIXELS_PER_BEAT*INPUT_BITS-1:0] px_data;
wire                    px_row_done;
wire                    in_digit_done;
wire                    in_digit_last;
wire                    in_digit_abort;
wire                    in_error_valid;
wire [7:0]              in_error_code;
wire                    in_active;
wire                    loader_active;

// flush after a short frame: wait for the complete digits before it, reset the datapath,
// wait until it has cleared its state
localparam [1:0]
    FL_IDLE = 2'd0,
    FL_DRAIN = 2'd1,
    FL_RESET = 2'd2,
    FL_WAIT = 2'd3;

reg [1:0] flush_state_reg = FL_IDLE;
reg [1:0] flush_delay_reg = 2'd0;
reg       flush_rst_reg = 1'b0;
reg [7:0] pending_reg = 8'd0;    // digits handed to the datapath without a result yet

// end-of-packet flags of the digits in flight, in order (written at digit_done, read with the
// digit's result)
reg [IN_FLIGHT-1:0] last_flags_reg = {IN_FLIGHT{1'b0}};
reg [4:0]           last_wr_reg = 5'd0;
reg [4:0]           last_rd_reg = 5'd0;

wire hold = loader_active || lite_valid || flush_state_reg != FL_IDLE;

pn_input #(
    .INPUT_BITS(INPUT_BITS),
    .PACKED(PACKED_PIXELS),
    .FRAMES_USED(FRAMES_USED_0)
)
input_inst (
    .clk(clk),
    .rst(soft_rst_reg),
    .s_axis_tdata(in_tdata),
    .s_axis_tvalid(in_tvalid && !load_mode),
    .s_axis_tready(px_tready),
    .s_axis_tlast(in_tlast),
    .hold(hold),
    .batch(batch),
    `PN_PX_CONNECT,
    .digit_done(in_digit_done),
    .digit_last(in_digit_last),
    .digit_abort(in_digit_abort),
    .error_valid(in_error_valid),
    .error_code(in_error_code),
    .active(in_active)
);

// ---------------------------------------------------------------------------------------------
// datapath

wire                        dp_busy;
wire                        res_valid;
wire                        res_ready;
wire [3:0]                  res_class;
wire [10*LOGIT_BITS-1:0]    res_logits;

wire                 load_we;
wire [2:0]           load_layer;
wire [1:0]           load_kind;
wire [7:0]           load_bank;
wire [15:0]          load_addr;
wire [LOAD_BITS-1:0] load_data;

// datapath reset: module reset, SOFT_RESET or a flush (memories keep their contents)
reg dp_rst_reg = 1'b1;
always @(posedge clk) begin
    dp_rst_reg <= rst || soft_reset || flush_rst_reg;
end

pn_net #(
    .MEM_DIR(MEM_DIR)
)
net_inst (
    .clk(clk),
    .rst(dp_rst_reg),
    `PN_PX_CONNECT,
    .res_valid(res_valid),
    .res_ready(res_ready),
    .res_class(res_class),
    .res_logits(res_logits),
    `PN_LOAD_CONNECT,
    .busy(dp_busy)
);

wire res_take = res_valid && res_ready;

always @(posedge clk) begin
    flush_rst_reg <= 1'b0;

    case ({in_digit_done, res_take})
        2'b10: pending_reg <= pending_reg + 8'd1;
        2'b01: pending_reg <= pending_reg - 8'd1;
        default: pending_reg <= pending_reg;
    endcase
    if (in_digit_done) begin
        last_flags_reg[last_wr_reg] <= in_digit_last;
        last_wr_reg <= last_wr_reg + 5'd1;
    end
    if (res_take) begin
        last_rd_reg <= last_rd_reg + 5'd1;
    end

    case (flush_state_reg)
        FL_IDLE: begin
            if (in_digit_abort) begin
                flush_state_reg <= FL_DRAIN;
            end
        end
        FL_DRAIN: begin
            // complete digits received before the short frame still produce their results
            if (pending_reg == 8'd0) begin
                flush_rst_reg <= 1'b1;
                flush_delay_reg <= 2'd3;
                flush_state_reg <= FL_RESET;
            end
        end
        FL_RESET: begin
            // the reset reaches the datapath two cycles later; give busy time to rise
            flush_delay_reg <= flush_delay_reg - 2'd1;
            if (flush_delay_reg == 2'd0) begin
                flush_state_reg <= FL_WAIT;
            end
        end
        default: begin
            if (!dp_busy) begin
                flush_state_reg <= FL_IDLE;
            end
        end
    endcase

    if (soft_rst_reg) begin
        flush_state_reg <= FL_IDLE;
        flush_rst_reg <= 1'b0;
        pending_reg <= 8'd0;
        last_wr_reg <= 5'd0;
        last_rd_reg <= 5'd0;
    end
end

// ---------------------------------------------------------------------------------------------
// loader

wire       ld_error_valid;
wire [7:0] ld_error_code;
wire       load_start;
wire       load_done;
wire       load_ok;

// a load may start: no digit anywhere in the datapath and no pixel beat taken this cycle
wire px_take = in_tvalid && !load_mode && px_tready;
wire idle_ok = !in_active && !px_take && pending_reg == 8'd0 && !dp_busy &&
               flush_state_reg == FL_IDLE;

/* verilator lint_off WIDTH */ // the packed vectors have 32 bits per synthesized layer
pn_loader #(
    .NUM_LAYERS(NUM_LAYERS),
    .V_GROUPS(`PN_V_GROUPS),
    .V_WORD_BITS(`PN_V_WORD_BITS),
    .V_SYNAPSE_DEPTH(`PN_V_SYNAPSE_DEPTH),
    .V_INDEX_BITS(`PN_V_INDEX_BITS),
    .V_INDEX_DEPTH(`PN_V_INDEX_DEPTH),
    .V_LANES(`PN_V_LANES),
    .V_PARAM_BITS(`PN_V_PARAM_BITS),
    .V_LOCALS(`PN_V_LOCALS),
    .LOAD_BITS(LOAD_BITS),
    .FORMAT_VERSION(`PN_FORMAT_VERSION)
)
/* verilator lint_on WIDTH */
loader_inst (
    .clk(clk),
    .rst(soft_rst_reg),
    .s_axis_tdata(in_tdata),
    .s_axis_tvalid(in_tvalid && load_mode),
    .s_axis_tready(ld_tready),
    .s_axis_tlast(in_tlast),
    `PN_LITE_CONNECT,
    .clear(clear_error),
    .idle_ok(idle_ok),
    `PN_LOAD_CONNECT,
    .active(loader_active),
    .load_start(load_start),
    .load_done(load_done),
    .load_ok(load_ok),
    .error_valid(ld_error_valid),
    .error_code(ld_error_code)
);

// ---------------------------------------------------------------------------------------------
// result formatter: one captured result becomes 1 or 11 beats

reg                     fmt_busy_reg = 1'b0;
reg                     fmt_logits_reg = 1'b0;  // logits follow the class beat
reg                     fmt_pkt_last_reg = 1'b0; // the digit ended an input packet
reg [3:0]               fmt_beat_reg = 4'd0;
reg [3:0]               fmt_class_reg = 4'd0;
reg [10*LOGIT_BITS-1:0] fmt_logits_data_reg = {10*LOGIT_BITS{1'b0}};
reg [15:0]              fmt_seq_reg = 16'd0;    // digit counter of beat 0

wire [31:0] fmt_tdata;
wire        fmt_end;     // last beat of the digit's result
wire        fmt_tlast;
wire        fmt_tready;

// the current logit, sign-extended to 32 bits
wire [31:0] fmt_logit;
generate
    if (LOGIT_BITS < 32) begin : logit_ext
        assign fmt_logit = {{(32-LOGIT_BITS){fmt_logits_data_reg[LOGIT_BITS-1]}},
                            fmt_logits_data_reg[LOGIT_BITS-1:0]};
    end else begin : logit_trunc
        assign fmt_logit = fmt_logits_data_reg[31:0];
    end
endgenerate

assign fmt_tdata = fmt_beat_reg == 4'd0 ? {fmt_seq_reg, 12'd0, fmt_class_reg} : fmt_logit;
assign fmt_end = fmt_beat_reg == (fmt_logits_reg ? C_LAST_BEAT[3:0] : 4'd0);
assign fmt_tlast = fmt_end && fmt_pkt_last_reg;
assign res_ready = !fmt_busy_reg;

always @(posedge clk) begin
    if (res_take) begin
        fmt_busy_reg <= 1'b1;
        fmt_beat_reg <= 4'd0;
        fmt_logits_reg <= logits_enable;
        fmt_pkt_last_reg <= last_flags_reg[last_rd_reg];
        fmt_class_reg <= res_class;
        fmt_logits_data_reg <= res_logits;
    end else if (fmt_busy_reg && fmt_tready) begin
        if (fmt_end) begin
            fmt_busy_reg <= 1'b0;
            fmt_seq_reg <= fmt_seq_reg + 16'd1;
        end
        fmt_beat_reg <= fmt_beat_reg + 4'd1;
        if (fmt_beat_reg != 4'd0) begin
            fmt_logits_data_reg <= fmt_logits_data_reg >> LOGIT_BITS;
        end
    end

    if (clear_counters) begin
        fmt_seq_reg <= 16'd0;
    end

    // SOFT_RESET leaves a result that is being sent alone, so that no packet is cut short
    if (rst) begin
        fmt_busy_reg <= 1'b0;
        fmt_seq_reg <= 16'd0;
    end
end

pn_skid_buffer #(
    .DATA_WIDTH(33)
)
out_skid_inst (
    .clk(clk),
    .rst(rst),
    .s_data({fmt_tlast, fmt_tdata}),
    .s_valid(fmt_busy_reg),
    .s_ready(fmt_tready),
    .m_data({m_axis_tlast, m_axis_tdata}),
    .m_valid(m_axis_tvalid),
    .m_ready(m_axis_tready)
);

// ---------------------------------------------------------------------------------------------
// registers

wire in_flight = in_active || pending_reg != 8'd0 || fmt_busy_reg || m_axis_tvalid;

pn_axil_regs regs_inst (
    .clk(clk),
    .rst(rst),
    `PN_S_AXIL_CONNECT,
    .soft_reset(soft_reset),
    .clear_counters(clear_counters),
    .logits_enable(logits_enable),
    .load_mode(load_mode),
    .clear_error(clear_error),
    .batch(batch),
    `PN_LITE_CONNECT,
    .busy(in_flight || loader_active || flush_state_reg != FL_IDLE || dp_busy),
    .in_error_valid(in_error_valid),
    .in_error_code(in_error_code),
    .ld_error_valid(ld_error_valid),
    .ld_error_code(ld_error_code),
    .load_start(load_start),
    .load_done(load_done),
    .load_ok(load_ok),
    .inc_digits(fmt_busy_reg && fmt_tready && fmt_end),
    .inc_cycles(in_flight),
    .inc_stall(m_axis_tvalid && !m_axis_tready),
    .inc_input_stall(s_axis_tvalid && !s_axis_tready && !load_mode)
);

endmodule

`resetall
