/*
 * Macros shared by the modules of neuro_core (Verilog-2005).
 *
 * Parameter checks. In an initial block,
 *
 *     if (BAD) `PN_STOP(("module: NAME = %0d, ...", NAME))
 *
 * reports the message ($error; the argument is one parenthesized $error argument list) and
 * stops: the simulation at time 0 (Icarus, Verilator), the synthesis at elaboration (Yosys,
 * Vivado).
 *
 * Port lists and port connections. A module lists them after clk/rst as `PN_..._PORTS (no
 * trailing comma; add one when more ports follow); an instance whose signals carry the port
 * names connects them with `PN_..._CONNECT (PN_S_AXIS_CONNECT, PN_M_AXIS_CONNECT,
 * PN_S_AXIL_CONNECT, PN_PX_CONNECT, PN_LITE_CONNECT, PN_LOAD_CONNECT). About one line per
 * AXI channel. neuro_core declares its own ports one per line: the IP packaging reads its
 * header.
 *
 *   PN_S_AXIS_PORTS             32-bit AXI4-Stream slave s_axis_* (tdata, tvalid, tready, tlast)
 *   PN_S_AXIL_PORTS             AXI4-Lite slave s_axil_* (12-bit addresses, 32-bit data)
 *   PN_PX_PORTS(rdy, dat)       row port px_* of the datapath: px_ready has direction rdy, the
 *                               others dat (pn_input: input, output; pn_net: output, input);
 *                               px_data is PIXELS_PER_BEAT*INPUT_BITS bits wide
 *   PN_LITE_PORTS(dat, rdy)     load words written over AXI-Lite, lite_* (32-bit lite_data):
 *                               lite_ready has direction rdy, the others dat (pn_axil_regs:
 *                               output, input; pn_loader: input, output)
 *   PN_LOAD_PORTS(dir)          memory write port load_* of the datapath, all of direction dir
 *                               (pn_loader: output; pn_net: input); load_data is LOAD_BITS wide
 */

`ifndef PN_MACROS_VH
`define PN_MACROS_VH

`define PN_STOP(message) begin $error message; $finish; end

// the pixel stream of neuro_params.vh: 1 where the host packs the pixels at INPUT_BITS bits
// (headers written before the packed stream existed have no PN_PACKED_PIXELS: four bytes)
`ifndef PN_PACKED_PIXELS
`define PN_PACKED_PIXELS 0
`endif

// pixels of one 32-bit s_axis beat: four bytes, or packed, as many INPUT_BITS-bit pixels as
// the beat holds, at most a row of 28 (pynq_neuro.compiler.limits.pixels_per_beat)
`define PN_PIXELS_PER_BEAT(packed, bits) \
    ((packed) ? ((32 / (bits)) > 28 ? 28 : 32 / (bits)) : 4)

`define PN_S_AXIS_PORTS \
    input  wire [31:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready, \
    input  wire s_axis_tlast

`define PN_S_AXIL_PORTS \
    input  wire [11:0] s_axil_awaddr, input wire [2:0] s_axil_awprot, \
        input wire s_axil_awvalid, output wire s_axil_awready, \
    input  wire [31:0] s_axil_wdata, input wire [3:0] s_axil_wstrb, \
        input wire s_axil_wvalid, output wire s_axil_wready, \
    output wire [1:0] s_axil_bresp, output wire s_axil_bvalid, input wire s_axil_bready, \
    input  wire [11:0] s_axil_araddr, input wire [2:0] s_axil_arprot, \
        input wire s_axil_arvalid, output wire s_axil_arready, \
    output wire [31:0] s_axil_rdata, output wire [1:0] s_axil_rresp, \
        output wire s_axil_rvalid, input wire s_axil_rready

`define PN_S_AXIS_CONNECT \
    .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), \
    .s_axis_tlast(s_axis_tlast)

`define PN_M_AXIS_CONNECT \
    .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready), \
    .m_axis_tlast(m_axis_tlast)

`define PN_S_AXIL_CONNECT \
    .s_axil_awaddr(s_axil_awaddr), .s_axil_awprot(s_axil_awprot), \
        .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready), \
    .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid), \
        .s_axil_wready(s_axil_wready), \
    .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid), .s_axil_bready(s_axil_bready), \
    .s_axil_araddr(s_axil_araddr), .s_axil_arprot(s_axil_arprot), \
        .s_axil_arvalid(s_axil_arvalid), .s_axil_arready(s_axil_arready), \
    .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp), .s_axil_rvalid(s_axil_rvalid), \
        .s_axil_rready(s_axil_rready)

`define PN_PX_PORTS(rdy, dat) \
    rdy wire px_ready, dat wire px_en, dat wire [4:0] px_base, \
    dat wire [PIXELS_PER_BEAT*INPUT_BITS-1:0] px_data, dat wire px_row_done

`define PN_PX_CONNECT \
    .px_ready(px_ready), .px_en(px_en), .px_base(px_base), .px_data(px_data), \
    .px_row_done(px_row_done)

`define PN_LITE_PORTS(dat, rdy) \
    dat wire [31:0] lite_data, dat wire lite_valid, rdy wire lite_ready

`define PN_LITE_CONNECT \
    .lite_data(lite_data), .lite_valid(lite_valid), .lite_ready(lite_ready)

`define PN_LOAD_PORTS(dir) \
    dir wire load_we, dir wire [2:0] load_layer, dir wire [1:0] load_kind, \
    dir wire [7:0] load_bank, dir wire [15:0] load_addr, dir wire [LOAD_BITS-1:0] load_data

`define PN_LOAD_CONNECT \
    .load_we(load_we), .load_layer(load_layer), .load_kind(load_kind), .load_bank(load_bank), \
    .load_addr(load_addr), .load_data(load_data)

`endif
