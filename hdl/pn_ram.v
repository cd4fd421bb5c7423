/*
 * pn_ram: simple dual-port RAM, one write port (the load port of the layers) and one read
 * port with a read enable and a registered output (rd_data holds its value while rd_en is
 * low). Initialised from INIT_FILE with $readmemh, or to zero when INIT_FILE is "". Never
 * reset: the contents are the network.
 */

`include "pn_prelude.vh"

module pn_ram #
(
    // bits per word
    parameter WIDTH = 8,
    // words
    parameter DEPTH = 16,
    // synthesis style of the array: "block", "distributed" or "auto" (the tool chooses)
    /* verilator lint_off UNUSEDPARAM */ // an attribute, read by synthesis only
    parameter RAM_STYLE = "auto",
    /* verilator lint_on UNUSEDPARAM */
    // $readmemh image of the contents, "" for a memory that starts at zero
    parameter INIT_FILE = "",
    // 1: the two ports share one address, the write's while wr_en is high (a distributed RAM
    // then uses single-port cells: 2 bits a LUT instead of 1.5); for memories that are never
    // written and read in the same cycle (the simulation stops if they are)
    parameter SHARED_ADDR = 0,
    // address width; keep the default
    parameter ADDR_BITS = (DEPTH > 1) ? $clog2(DEPTH) : 1
)
(
    input  wire                 clk,

    input  wire                 wr_en,
    input  wire [ADDR_BITS-1:0] wr_addr,
    input  wire [WIDTH-1:0]     wr_data,

    input  wire                 rd_en,
    input  wire [ADDR_BITS-1:0] rd_addr,
    output wire [WIDTH-1:0]     rd_data
);

initial begin
    if (WIDTH < 1 || DEPTH < 1 || ADDR_BITS != ((DEPTH > 1) ? $clog2(DEPTH) : 1))
        `PN_STOP(("pn_ram: WIDTH = %0d, DEPTH = %0d, ADDR_BITS = %0d", WIDTH, DEPTH, ADDR_BITS))
    if (SHARED_ADDR != 0 && SHARED_ADDR != 1)
        `PN_STOP(("pn_ram: SHARED_ADDR = %0d, not 0 or 1", SHARED_ADDR))
end

(* ram_style = RAM_STYLE *)
reg [WIDTH-1:0] mem [0:DEPTH-1];
reg [WIDTH-1:0] rd_data_reg = {WIDTH{1'b0}};

assign rd_data = rd_data_reg;

generate
    if (INIT_FILE != "") begin : g_image
        initial begin
            $readmemh(INIT_FILE, mem);
        end
    end else begin : g_zero
        integer k;
        initial begin
            for (k = 0; k < DEPTH; k = k + 1) begin
                mem[k] = {WIDTH{1'b0}};
            end
        end
    end
endgenerate

// With SHARED_ADDR the write port also takes addr_rd, which equals wr_addr whenever wr_en is
// high: the same behaviour, but both ports see one address signal, which is what lets
// synthesis map the array to single-port distributed RAM cells.
wire [ADDR_BITS-1:0] addr_rd = (SHARED_ADDR && wr_en) ? wr_addr : rd_addr;
wire [ADDR_BITS-1:0] addr_wr = SHARED_ADDR ? addr_rd : wr_addr;

always @(posedge clk) begin
    if (rd_en) begin
        rd_data_reg <= mem[addr_rd];
    end
end

always @(posedge clk) begin
    if (wr_en) begin
        mem[addr_wr] <= wr_data;
    end
end

`ifndef SYNTHESIS
always @(posedge clk) begin
    if (SHARED_ADDR && wr_en && rd_en)
        `PN_STOP(("pn_ram: a write and a read in one cycle with SHARED_ADDR = 1"))
end
`endif

endmodule

`resetall
