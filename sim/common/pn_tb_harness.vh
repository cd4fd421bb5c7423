/*
 * Bench harness of neuro_core, included inside the module of a simulation bench
 * (sim/fast/tb_neuro_core.v, sim/cosim/tb_cosim.v; not part of the core).
 *
 * Declares clk (100 MHz), rst (high at start), the stream signals s_axis_* (registers the bench
 * drives) and m_axis_*, the AXI-Lite signals s_axil_* (write strobes all set, responses always
 * taken), a free-running cycle counter and the instance dut of neuro_core, and provides the
 * AXI-Lite master tasks axil_write(addr, data) and axil_read(addr, data): they drive after the
 * falling edge and sample just after it, so each access takes a fixed number of cycles.
 *
 * The including module sets TB_M_TREADY, the value of m_axis_tready at start, before the
 * `include.
 */

`include "pn_macros.vh"

reg clk = 1'b0;
reg rst = 1'b1;
always #5 clk = ~clk;

reg  [31:0] s_axis_tdata = 32'd0;
reg         s_axis_tvalid = 1'b0;
wire        s_axis_tready;
reg         s_axis_tlast = 1'b0;
wire [31:0] m_axis_tdata;
wire        m_axis_tvalid;
reg         m_axis_tready = TB_M_TREADY;
wire        m_axis_tlast;

reg  [11:0] s_axil_awaddr = 12'd0;
wire [2:0]  s_axil_awprot = 3'd0;
reg         s_axil_awvalid = 1'b0;
wire        s_axil_awready;
reg  [31:0] s_axil_wdata = 32'd0;
wire [3:0]  s_axil_wstrb = 4'hF;
reg         s_axil_wvalid = 1'b0;
wire        s_axil_wready;
wire [1:0]  s_axil_bresp;
wire        s_axil_bvalid;
wire        s_axil_bready = 1'b1;
reg  [11:0] s_axil_araddr = 12'd0;
wire [2:0]  s_axil_arprot = 3'd0;
reg         s_axil_arvalid = 1'b0;
wire        s_axil_arready;
wire [31:0] s_axil_rdata;
wire [1:0]  s_axil_rresp;
wire        s_axil_rvalid;
wire        s_axil_rready = 1'b1;

neuro_core dut (
    .clk(clk),
    .rst(rst),
    `PN_S_AXIS_CONNECT,
    `PN_M_AXIS_CONNECT,
    `PN_S_AXIL_CONNECT
);

reg [63:0] cycle = 64'd0;
always @(posedge clk) cycle <= cycle + 64'd1;

task axil_write(input [11:0] addr, input [31:0] data);
    reg aw_done, w_done;
    begin
        @(negedge clk);
        s_axil_awaddr = addr;
        s_axil_wdata = data;
        s_axil_awvalid = 1'b1;
        s_axil_wvalid = 1'b1;
        aw_done = 1'b0;
        w_done = 1'b0;
        while (!(aw_done && w_done)) begin
            #1;
            if (s_axil_awvalid && s_axil_awready) aw_done = 1'b1;
            if (s_axil_wvalid && s_axil_wready) w_done = 1'b1;
            @(negedge clk);
            if (aw_done) s_axil_awvalid = 1'b0;
            if (w_done) s_axil_wvalid = 1'b0;
        end
        #1;
        while (!s_axil_bvalid) begin
            @(negedge clk);
            #1;
        end
        @(negedge clk);
    end
endtask

task axil_read(input [11:0] addr, output [31:0] data);
    reg ar_done;
    begin
        @(negedge clk);
        s_axil_araddr = addr;
        s_axil_arvalid = 1'b1;
        ar_done = 1'b0;
        while (!ar_done) begin
            #1;
            if (s_axil_arready) ar_done = 1'b1;
            @(negedge clk);
        end
        s_axil_arvalid = 1'b0;
        #1;
        while (!s_axil_rvalid) begin
            @(negedge clk);
            #1;
        end
        data = s_axil_rdata;
        @(negedge clk);
    end
endtask
