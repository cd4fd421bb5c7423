/*
 * AXI4-Lite register block of neuro_core.
 *
 * The register map (offsets, CONTROL and STATUS bits, the LAYER[l].FIELD[f] block) and the
 * core version are generated from pynq_neuro/driver/registers.py into pn_regmap.vh, included
 * below; the table is in docs/hardware.md. Unmapped addresses read as 0; writes to read-only registers are ignored.
 * The identity registers (format version, layers, input bits, pixel stream, fingerprint) and
 * the LAYER block (`PN_V_<FIELD>) read the artifact's neuro_params.vh.
 */

`include "pn_prelude.vh"
`include "neuro_params.vh"

module pn_axil_regs
(
    input  wire                   clk,
    input  wire                   rst,

    // AXI-Lite slave: registers are word aligned, protection is not used and only CONTROL's
    // byte 0 is byte-writable (address bits 1:0, awprot, arprot and wstrb[3:1] are not read)
    /* verilator lint_off UNUSEDSIGNAL */
    `PN_S_AXIL_PORTS,
    /* verilator lint_on UNUSEDSIGNAL */

    // control
    output wire                   soft_reset,
    output wire                   clear_counters,
    output wire                   logits_enable,
    output wire                   load_mode,
    output wire                   clear_error,
    output wire [15:0]            batch,

    // AXI-Lite load stream
    `PN_LITE_PORTS(output, input),

    // status
    input  wire                   busy,
    input  wire                   in_error_valid,
    input  wire [7:0]             in_error_code,
    input  wire                   ld_error_valid,
    input  wire [7:0]             ld_error_code,
    input  wire                   load_start,
    input  wire                   load_done,
    input  wire                   load_ok,

    // counter increments
    input  wire                   inc_digits,
    input  wire                   inc_cycles,
    input  wire                   inc_stall,
    input  wire                   inc_input_stall
);

// register map and core version (generated from pynq_neuro/driver/registers.py)
`include "pn_regmap.vh"

// what the registers report of the network: its neuro_params.vh
localparam FORMAT_VERSION = `PN_FORMAT_VERSION;
localparam NUM_LAYERS = `PN_NUM_LAYERS;
localparam INPUT_BITS = `PN_INPUT_BITS;
localparam PACKED_PIXELS = `PN_PACKED_PIXELS;
localparam PIXELS_PER_BEAT = `PN_PIXELS_PER_BEAT(`PN_PACKED_PIXELS, `PN_INPUT_BITS);
localparam [63:0] FINGERPRINT = `PN_FINGERPRINT;

// layer field blocks: address bits [ADDR_WIDTH-1:LAYER_SHIFT] = l + LAYER_BLOCK_FIRST
localparam [4:0] LAYER_BLOCK_END = LAYER_BLOCK_FIRST + NUM_LAYERS[4:0];
localparam [31:0] FORMAT_VERSION_W = FORMAT_VERSION;
localparam [31:0] CORE_VERSION_W = CORE_VERSION;
localparam [31:0] NUM_LAYERS_W = NUM_LAYERS;
localparam [31:0] INPUT_BITS_W = INPUT_BITS;
localparam [0:0] PACKED_W = PACKED_PIXELS;
localparam [PIXEL_STREAM_PIXELS_PER_BEAT_WIDTH-1:0] PIXELS_PER_BEAT_W = PIXELS_PER_BEAT;

// limits of the core (pn_field)
`include "pn_limits.vh"

// synthesized value of field f of layer l (HW_LAYER_FIELDS order)
/* verilator lint_off WIDTH */
function [31:0] layer_field;
    input [2:0] l;
    input [4:0] f;
    begin
        case (f)
            0:  layer_field = pn_field(`PN_V_IN_CHANNELS, l);
            1:  layer_field = pn_field(`PN_V_OUT_CHANNELS, l);
            2:  layer_field = pn_field(`PN_V_TAPS, l);
            3:  layer_field = pn_field(`PN_V_STRIDE, l);
            4:  layer_field = pn_field(`PN_V_IN_FRAMES, l);
            5:  layer_field = pn_field(`PN_V_OUT_FRAMES, l);
            6:  layer_field = pn_field(`PN_V_FRAMES_USED, l);
            7:  layer_field = pn_field(`PN_V_FRAMES_EMITTED, l);
            8:  layer_field = pn_field(`PN_V_WEIGHT_BITS, l);
            9:  layer_field = pn_field(`PN_V_ACT_BITS, l);
            10: layer_field = pn_field(`PN_V_GROUPS, l);
            11: layer_field = pn_field(`PN_V_LANES, l);
            12: layer_field = pn_field(`PN_V_LOCALS, l);
            13: layer_field = pn_field(`PN_V_LOCAL_CHANNELS, l);
            14: layer_field = pn_field(`PN_V_LOCAL_BITS, l);
            15: layer_field = pn_field(`PN_V_ENTRY_BITS, l);
            16: layer_field = pn_field(`PN_V_WORD_BITS, l);
            17: layer_field = pn_field(`PN_V_ACC_BITS, l);
            18: layer_field = pn_field(`PN_V_LEVELS, l);
            19: layer_field = pn_field(`PN_V_PARAM_BITS, l);
            20: layer_field = pn_field(`PN_V_SYNAPSE_DEPTH, l);
            21: layer_field = pn_field(`PN_V_ADDR_BITS, l);
            22: layer_field = pn_field(`PN_V_COUNT_BITS, l);
            23: layer_field = pn_field(`PN_V_INDEX_BITS, l);
            24: layer_field = pn_field(`PN_V_INDEX_DEPTH, l);
            default: layer_field = 32'd0;
        endcase
    end
endfunction
/* verilator lint_on WIDTH */

// AXI-Lite channels, bit CH_WRITE the write (address and data taken together) and bit
// CH_READ the read: a request is taken when it is present and the previous one is answered;
// ready pulses in the next cycle, and the response follows once the request has taken
// effect (a write: a cycle after its handshake and once its load word is taken)
localparam CH_WRITE = 0;
localparam CH_READ = 1;

reg  [1:0] ch_ready_reg = 2'b00;
reg  [1:0] ch_pending_reg = 2'b00;
reg  [1:0] ch_resp_valid_reg = 2'b00;

reg [31:0] lite_data_reg = 32'd0;
reg        lite_valid_reg = 1'b0;
reg [31:0] rdata_reg = 32'd0;

wire [1:0] ch_request = {s_axil_arvalid, s_axil_awvalid && s_axil_wvalid};
wire [1:0] ch_resp_ready = {s_axil_rready, s_axil_bready};
wire [1:0] ch_resp_hold = {1'b0, ch_ready_reg[CH_WRITE] || lite_valid_reg};
wire [1:0] ch_take = ch_request & ~ch_ready_reg & ~ch_pending_reg & ~ch_resp_valid_reg;

// control and status
reg        soft_reset_reg = 1'b0;
reg        logits_enable_reg = 1'b0;
reg        load_mode_reg = 1'b0;
reg        clear_error_reg = 1'b0;
reg        clear_counters_reg = 1'b0;
reg [15:0] batch_reg = 16'd1;
reg        error_reg = 1'b0;
reg [7:0]  error_code_reg = 8'd0;
reg        load_done_reg = 1'b0;
reg        load_ok_reg = 1'b0;

// counters, 32 bits each: DIGITS, CYCLES, STALL_CYCLES, INPUT_STALL_CYCLES
localparam NUM_COUNTERS = 4;
reg  [32*NUM_COUNTERS-1:0] count_reg = {32*NUM_COUNTERS{1'b0}};
wire [NUM_COUNTERS-1:0]    count_inc = {inc_input_stall, inc_stall, inc_cycles, inc_digits};

assign s_axil_awready = ch_ready_reg[CH_WRITE];
assign s_axil_wready = ch_ready_reg[CH_WRITE];
assign s_axil_bresp = 2'b00;
assign s_axil_bvalid = ch_resp_valid_reg[CH_WRITE];
assign s_axil_arready = ch_ready_reg[CH_READ];
assign s_axil_rdata = rdata_reg;
assign s_axil_rresp = 2'b00;
assign s_axil_rvalid = ch_resp_valid_reg[CH_READ];

assign soft_reset = soft_reset_reg;
assign logits_enable = logits_enable_reg;
assign load_mode = load_mode_reg;
assign clear_error = clear_error_reg;
assign clear_counters = clear_counters_reg;
assign batch = batch_reg;
assign lite_data = lite_data_reg;
assign lite_valid = lite_valid_reg;

wire do_write = ch_take[CH_WRITE];
wire do_read = ch_take[CH_READ];

wire [ADDR_WIDTH-1:0] waddr = {s_axil_awaddr[ADDR_WIDTH-1:2], 2'b00};
wire [ADDR_WIDTH-1:0] raddr = {s_axil_araddr[ADDR_WIDTH-1:2], 2'b00};

wire clear_counters_w = do_write && waddr == A_CONTROL && s_axil_wstrb[0] &&
                          s_axil_wdata[CONTROL_CLEAR_COUNTERS];

// read data
wire [4:0]  layer_block = raddr[ADDR_WIDTH-1:LAYER_SHIFT];
wire [2:0]  layer_num = layer_block[2:0] - LAYER_BLOCK_FIRST[2:0];
wire [4:0]  field_num = raddr[LAYER_SHIFT-1:2];
reg  [31:0] read_value;

always @* begin
    read_value = 32'd0;
    case (raddr)
        A_ID:          read_value = ID_VALUE;
        A_VERSION:     read_value = {FORMAT_VERSION_W[15:0], CORE_VERSION_W[15:0]};
        A_CONTROL: begin
            read_value[CONTROL_LOGITS_ENABLE] = logits_enable_reg;
            read_value[CONTROL_LOAD_MODE] = load_mode_reg;
        end
        A_STATUS: begin
            read_value[STATUS_BUSY] = busy;
            read_value[STATUS_ERROR] = error_reg;
            read_value[STATUS_ERROR_CODE +: STATUS_ERROR_CODE_WIDTH] = error_code_reg;
            read_value[STATUS_LOAD_DONE] = load_done_reg;
            read_value[STATUS_LOAD_OK] = load_ok_reg;
        end
        A_DIGITS:      read_value = count_reg[0 +: 32];
        A_CYCLES:      read_value = count_reg[32 +: 32];
        A_STALL_CYCLES: read_value = count_reg[64 +: 32];
        A_INPUT_STALL_CYCLES: read_value = count_reg[96 +: 32];
        A_BATCH:       read_value = {16'd0, batch_reg};
        A_NUM_LAYERS:  read_value = NUM_LAYERS_W;
        A_INPUT_BITS:  read_value = INPUT_BITS_W;
        A_FINGERPRINT_LO: read_value = FINGERPRINT[31:0];
        A_FINGERPRINT_HI: read_value = FINGERPRINT[63:32];
        A_PIXEL_STREAM: begin
            read_value[PIXEL_STREAM_PACKED] = PACKED_W;
            read_value[PIXEL_STREAM_PIXELS_PER_BEAT +: PIXEL_STREAM_PIXELS_PER_BEAT_WIDTH] =
                PIXELS_PER_BEAT_W;
        end
        default: begin
            if (layer_block >= LAYER_BLOCK_FIRST && layer_block < LAYER_BLOCK_END &&
                    field_num < NUM_FIELDS) begin
                read_value = layer_field(layer_num, field_num);
            end
        end
    endcase
end

integer c;

always @(posedge clk) begin
    // the handshakes of both channels
    ch_ready_reg <= ch_take;
    ch_pending_reg <= ch_take | (ch_pending_reg & ch_resp_hold);
    ch_resp_valid_reg <= (ch_resp_valid_reg & ~ch_resp_ready) | (ch_pending_reg & ~ch_resp_hold);

    soft_reset_reg <= 1'b0;
    clear_error_reg <= 1'b0;
    clear_counters_reg <= clear_counters_w;

    if (do_write) begin
        if (waddr == A_CONTROL && s_axil_wstrb[0]) begin
            soft_reset_reg <= s_axil_wdata[CONTROL_SOFT_RESET];
            logits_enable_reg <= s_axil_wdata[CONTROL_LOGITS_ENABLE];
            load_mode_reg <= s_axil_wdata[CONTROL_LOAD_MODE];
            clear_error_reg <= s_axil_wdata[CONTROL_CLEAR_ERROR];
        end
        if (waddr == A_LOAD_DATA) begin
            lite_data_reg <= s_axil_wdata;
            lite_valid_reg <= 1'b1;
        end
        if (waddr == A_BATCH) begin
            batch_reg <= s_axil_wdata[15:0] == 16'd0 ? 16'd1 : s_axil_wdata[15:0];
        end
    end
    if (lite_valid_reg && lite_ready) begin
        lite_valid_reg <= 1'b0;
    end

    // read data is sampled with the address
    if (do_read) begin
        rdata_reg <= read_value;
    end

    // status: the first error (the input unit's before the loader's) is kept until
    // CLEAR_ERROR; without an error the code is 0
    if (!error_reg || clear_error_reg) begin
        error_reg <= in_error_valid || ld_error_valid;
        error_code_reg <= in_error_valid ? in_error_code : ld_error_valid ? ld_error_code : 8'd0;
    end
    if (load_start) begin
        load_done_reg <= 1'b0;
        load_ok_reg <= 1'b0;
    end
    if (load_done) begin
        load_done_reg <= 1'b1;
        load_ok_reg <= load_ok;
    end

    for (c = 0; c < NUM_COUNTERS; c = c + 1) begin
        count_reg[32*c +: 32] <= clear_counters_w ? 32'd0 :
                                 count_reg[32*c +: 32] + {31'd0, count_inc[c]};
    end

    if (rst) begin
        ch_ready_reg <= 2'b00;
        ch_pending_reg <= 2'b00;
        ch_resp_valid_reg <= 2'b00;
        lite_valid_reg <= 1'b0;
        soft_reset_reg <= 1'b0;
        logits_enable_reg <= 1'b0;
        load_mode_reg <= 1'b0;
        clear_error_reg <= 1'b0;
        clear_counters_reg <= 1'b0;
        batch_reg <= 16'd1;
        error_reg <= 1'b0;
        error_code_reg <= 8'd0;
        load_done_reg <= 1'b0;
        load_ok_reg <= 1'b0;
        count_reg <= {32*NUM_COUNTERS{1'b0}};
    end
end

endmodule

`resetall
