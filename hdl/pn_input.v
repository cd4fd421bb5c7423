/*
 * Input unit: pixel beats of the s_axis stream to row writes of the datapath.
 *
 * A row of 28 pixels takes BEATS_PER_ROW beats of PIXELS_PER_BEAT pixels, a digit 28 rows:
 *   PACKED = 0  four 8-bit pixels a beat (pixel 4m+b of a row in bits 8b+7:8b), 7 beats a row,
 *               196 a digit; the unit keeps the INPUT_BITS high bits of each pixel;
 *   PACKED = 1  the host sends the pixels already shifted to INPUT_BITS bits, as many a beat as
 *               32 bits hold and at most a row (pixel Pm+b of a row in bits
 *               INPUT_BITS*(b+1)-1 : INPUT_BITS*b, P = PIXELS_PER_BEAT): binary pixels take one
 *               beat a row (28 a digit), 4-bit pixels four (112). A row starts on a new beat;
 *               the bits above its last pixel are ignored.
 * Digits come in packets of at most `batch` digits: TLAST on the last beat of a digit ends the
 * packet, and the batch-th digit of a packet must end with TLAST (batch = 1: TLAST on the last
 * beat of every digit). digit_last marks (with digit_done) a digit that ended its packet. Each
 * beat of a row below FRAMES_USED writes its pixels to channels Pm..Pm+P-1 of the current row
 * (px_en; channels past 27 are ignored by the row buffer); the last beat of the row also pulses
 * px_row_done. Beats of later rows are consumed without writes.
 *
 * Framing errors:
 *   1  TLAST inside a digit: the partial digit is dropped (digit_abort pulse; the core flushes the
 *      datapath) and the next beat starts a new digit;
 *   2  no TLAST on the last beat of the batch-th digit of a packet: the digit is complete
 *      (digit_done, digit_last), the following beats are dropped up to and including the next
 *      TLAST.
 */

`include "pn_prelude.vh"

module pn_input #
(
    // activation bits of the first layer: a pixel p becomes p >> (8 - INPUT_BITS)
    parameter INPUT_BITS = 8,
    // 0: four 8-bit pixels a beat; 1: pixels packed at INPUT_BITS bits by the host
    parameter PACKED = 0,
    // pixels a beat; keep the default
    parameter PIXELS_PER_BEAT = `PN_PIXELS_PER_BEAT(PACKED, INPUT_BITS),
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

// beats per row (28 x 28 pixels, a row starts on a new beat) and the width of a pixel's field
localparam integer BEATS_PER_ROW = pn_ceil_div(LIMIT_IMAGE_COLS, PIXELS_PER_BEAT);
localparam integer FIELD_BITS = PACKED ? INPUT_BITS : 8;
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
    if ((PACKED != 0 && PACKED != 1) ||
            PIXELS_PER_BEAT != `PN_PIXELS_PER_BEAT(PACKED, INPUT_BITS))
        `PN_STOP(("pn_input: PACKED = %0d, PIXELS_PER_BEAT = %0d; keep the default (%0d)",
                  PACKED, PIXELS_PER_BEAT, `PN_PIXELS_PER_BEAT(PACKED, INPUT_BITS)))
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
/* verilator lint_off WIDTH */
localparam [4:0] BASE_STEP = PIXELS_PER_BEAT;
/* verilator lint_on WIDTH */
// first channel of the beat: a shift for four pixels a beat, 0 for a row a beat
/* verilator lint_off UNUSEDSIGNAL */
wire [7:0] base_product = col_reg * BASE_STEP;
/* verilator lint_on UNUSEDSIGNAL */
assign px_base = base_product[4:0];

genvar b;
generate
    for (b = 0; b < PIXELS_PER_BEAT; b = b + 1) begin : pixel
        // the INPUT_BITS high bits of the pixel's field
        assign px_data[b*INPUT_BITS +: INPUT_BITS] =
            s_axis_tdata[FIELD_BITS*b + FIELD_BITS - 1 -: INPUT_BITS];
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
