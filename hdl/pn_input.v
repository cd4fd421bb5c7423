/*
 * Input unit: pixel beats of the s_axis stream to row writes of the datapath.
 *
 * A digit is 196 beats of four 8-bit pixels (pixel 4m+b of a row in bits 8b+7:8b), 7 beats per
 * row. Digits come in packets of at most `batch` digits: TLAST on the last beat of a digit ends
 * the packet, and the batch-th digit of a packet must end with TLAST (batch = 1: TLAST on beat
 * 196 of every digit). digit_last marks (with digit_done) a digit that ended its packet. Each beat of a row below FRAMES_USED writes its four pixels, shifted to
 * INPUT_BITS, to channels 4m..4m+3 of the current row (px_en); the last beat of the row also
 * pulses px_row_done. Beats of later rows are consumed without writes.
 *
 * Framing errors:
 *   1  TLAST inside a digit: the partial digit is dropped (digit_abort pulse; the core flushes the
 *      datapath) and the next beat starts a new digit;
 *   2  no TLAST on the last beat of the batch-th digit of a packet: the digit is complete
 *      (digit_done, digit_last), the following beats are dropped up to and including the next
 *      TLAST.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "pn_macros.vh"

module pn_input #
(
    // activation bits of the first layer: a pixel p becomes p >> (8 - INPUT_BITS)
    parameter INPUT_BITS = 8,
    // rows (input frames) of layer 0 that are written; later rows are consumed and dropped
    parameter FRAMES_USED = 28
)
(
    input  wire                    clk,
    input  wire                    rst,

    // pixel stream
    /* verilator lint_off UNUSEDSIGNAL */ // pixel bits below INPUT_BITS are shifted out
    `PN_S_AXIS_PORTS,
    /* verilator lint_on UNUSEDSIGNAL */

    // do not start a new digit (loading, flushing)
    input  wire                    hold,
    // digits per packet (0 is taken as 1)
    input  wire [15:0]             batch,

    // row port of the datapath
    `PN_PX_PORTS(input, output),

    // events
    output wire                    digit_done,
    output wire                    digit_last,
    output wire                    digit_abort,
    output wire                    error_valid,
    output wire [7:0]              error_code,

    // a digit is partly received, or a long frame is being dropped
    output wire                    active
);

// limits of the core and the derived fields of a layer
`include "pn_limits.vh"

// beats per row and per digit (four pixels per beat, 28 x 28 pixels)
localparam integer BEATS_PER_ROW = LIMIT_IMAGE_COLS / 4;
localparam integer ROWS = LIMIT_IMAGE_ROWS;
localparam integer C_LAST_COL = BEATS_PER_ROW - 1;
localparam integer C_LAST_ROW = ROWS - 1;

// parameter checks: stop the simulation at time 0 and the synthesis with the message
initial begin
    if (INPUT_BITS < 1 || INPUT_BITS > LIMIT_MAX_INPUT_BITS)
        `PN_STOP(("pn_input: INPUT_BITS = %0d, a pixel has %0d bits", INPUT_BITS,
                  LIMIT_MAX_INPUT_BITS))
    if (FRAMES_USED < 1 || FRAMES_USED > ROWS)
        `PN_STOP(("pn_input: FRAMES_USED = %0d, a digit has %0d rows", FRAMES_USED, ROWS))
end
localparam [5:0] ROWS_USED = FRAMES_USED[5:0];

reg [2:0] col_reg = 3'd0;     // beat within the row
reg [4:0] row_reg = 5'd0;     // row within the digit
reg       drop_reg = 1'b0;    // dropping the tail of a long frame
reg [15:0] pkt_reg = 16'd0;   // digits of the current packet already received

reg       digit_done_reg = 1'b0;
reg       digit_last_reg = 1'b0;
reg       digit_abort_reg = 1'b0;
reg       error_valid_reg = 1'b0;
reg [7:0] error_code_reg = 8'd0;

wire first_beat = (col_reg == 3'd0) && (row_reg == 5'd0);
wire last_col = col_reg == C_LAST_COL[2:0];
wire last_beat = last_col && (row_reg == C_LAST_ROW[4:0]);
wire row_used = {1'b0, row_reg} < ROWS_USED;
// this digit is the last one a packet may hold
wire batch_full = pkt_reg + 16'd1 >= batch;

// ready depends only on registers and on the datapath's px_ready, never on tvalid. After a
// short frame the next digit waits a cycle for the core to raise hold (its flush), so that no
// beat of it slips in before the flush.
assign s_axis_tready = drop_reg ? 1'b1 :
                       (first_beat && (hold || digit_abort_reg)) ? 1'b0 :
                       row_used ? px_ready : 1'b1;

wire accept = s_axis_tvalid && s_axis_tready;
wire short_frame = !drop_reg && s_axis_tlast && !last_beat;
wire take_pixels = accept && !drop_reg && !short_frame;

assign px_en = take_pixels && row_used;
assign px_row_done = take_pixels && row_used && last_col;
assign px_base = {col_reg, 2'b00};

genvar b;
generate
    for (b = 0; b < 4; b = b + 1) begin : pixel
        assign px_data[b*INPUT_BITS +: INPUT_BITS] = s_axis_tdata[8*b+7 -: INPUT_BITS];
    end
endgenerate

assign digit_done = digit_done_reg;
assign digit_last = digit_last_reg;
assign digit_abort = digit_abort_reg;
assign error_valid = error_valid_reg;
assign error_code = error_code_reg;
assign active = drop_reg || !first_beat;

always @(posedge clk) begin
    digit_done_reg <= 1'b0;
    digit_abort_reg <= 1'b0;
    error_valid_reg <= 1'b0;

    if (accept) begin
        if (drop_reg) begin
            if (s_axis_tlast) begin
                drop_reg <= 1'b0;
            end
        end else if (short_frame) begin
            col_reg <= 3'd0;
            row_reg <= 5'd0;
            pkt_reg <= 16'd0;
            digit_abort_reg <= 1'b1;
            error_valid_reg <= 1'b1;
            error_code_reg <= 8'd1;
        end else if (last_beat) begin
            col_reg <= 3'd0;
            row_reg <= 5'd0;
            digit_done_reg <= 1'b1;
            digit_last_reg <= s_axis_tlast || batch_full;
            pkt_reg <= (s_axis_tlast || batch_full) ? 16'd0 : pkt_reg + 16'd1;
            if (!s_axis_tlast && batch_full) begin
                drop_reg <= 1'b1;
                error_valid_reg <= 1'b1;
                error_code_reg <= 8'd2;
            end
        end else if (last_col) begin
            col_reg <= 3'd0;
            row_reg <= row_reg + 5'd1;
        end else begin
            col_reg <= col_reg + 3'd1;
        end
    end

    if (rst) begin
        col_reg <= 3'd0;
        row_reg <= 5'd0;
        drop_reg <= 1'b0;
        pkt_reg <= 16'd0;
        digit_done_reg <= 1'b0;
        digit_last_reg <= 1'b0;
        digit_abort_reg <= 1'b0;
        error_valid_reg <= 1'b0;
        error_code_reg <= 8'd0;
    end
end

endmodule

`resetall
