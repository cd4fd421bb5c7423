/*
 * Skid buffer: a two-entry register slice on a valid/ready channel.
 *
 * Both s_ready and m_valid/m_data come from registers, so no combinational path crosses the
 * buffer in either direction; it sustains one transfer per cycle.
 *
 * The structure follows the skid-buffer mode (REG_TYPE = 2) of axis_register from Alex
 * Forencich's verilog-axis (https://github.com/alexforencich/verilog-axis, MIT license); this
 * is an independent implementation of that scheme, not a copy of its code.
 */

`include "pn_prelude.vh"

module pn_skid_buffer #
(
    // width of the payload (data and any sideband bits, e.g. {tlast, tdata})
    parameter DATA_WIDTH = 33
)
(
    input  wire                  clk,
    input  wire                  rst,

    // input side
    input  wire [DATA_WIDTH-1:0] s_data,
    input  wire                  s_valid,
    output wire                  s_ready,

    // output side
    output wire [DATA_WIDTH-1:0] m_data,
    output wire                  m_valid,
    input  wire                  m_ready
);

reg [DATA_WIDTH-1:0] m_data_reg = {DATA_WIDTH{1'b0}};
reg                  m_valid_reg = 1'b0, m_valid_next;
reg [DATA_WIDTH-1:0] temp_data_reg = {DATA_WIDTH{1'b0}};
reg                  temp_valid_reg = 1'b0, temp_valid_next;
reg                  s_ready_reg = 1'b0;

reg store_input_to_output;
reg store_input_to_temp;
reg store_temp_to_output;

// accept when the temporary register is free, or when the output is free or drains this cycle
wire s_ready_early = m_ready || (!temp_valid_reg && (!m_valid_reg || !s_valid));

assign s_ready = s_ready_reg;
assign m_data  = m_data_reg;
assign m_valid = m_valid_reg;

always @* begin
    m_valid_next = m_valid_reg;
    temp_valid_next = temp_valid_reg;
    store_input_to_output = 1'b0;
    store_input_to_temp = 1'b0;
    store_temp_to_output = 1'b0;

    if (s_ready_reg) begin
        if (m_ready || !m_valid_reg) begin
            // output free: input goes straight to the output register
            m_valid_next = s_valid;
            store_input_to_output = 1'b1;
        end else begin
            // output stalled: input goes to the temporary register
            temp_valid_next = s_valid;
            store_input_to_temp = 1'b1;
        end
    end else if (m_ready) begin
        // input stalled, output drains: the temporary register moves to the output
        m_valid_next = temp_valid_reg;
        temp_valid_next = 1'b0;
        store_temp_to_output = 1'b1;
    end
end

always @(posedge clk) begin
    m_valid_reg <= m_valid_next;
    temp_valid_reg <= temp_valid_next;
    s_ready_reg <= s_ready_early;

    if (store_input_to_output) begin
        m_data_reg <= s_data;
    end else if (store_temp_to_output) begin
        m_data_reg <= temp_data_reg;
    end

    if (store_input_to_temp) begin
        temp_data_reg <= s_data;
    end

    if (rst) begin
        m_valid_reg <= 1'b0;
        temp_valid_reg <= 1'b0;
        s_ready_reg <= 1'b0;
    end
end

endmodule

`resetall
