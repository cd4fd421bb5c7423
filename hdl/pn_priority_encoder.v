/*

pynq-neuro: priority encoder (lowest set bit wins)

A balanced tree of 2:1 selections, clog2(WIDTH) levels deep: the index of the least
significant set bit of the input, and whether any bit is set (index 0 when none is).

*/

`include "pn_prelude.vh"

module pn_priority_encoder #
(
    // input width (any value >= 1)
    parameter WIDTH = 4,
    // output index width; keep the default
    parameter INDEX_BITS = (WIDTH > 1) ? $clog2(WIDTH) : 1
)
(
    input  wire [WIDTH-1:0]      in_bits,
    output wire                  out_valid,
    output wire [INDEX_BITS-1:0] out_index
);

// tree levels and padded width (a power of two, at least 2)
localparam LEVELS = (WIDTH > 2) ? $clog2(WIDTH) : 1;
localparam PAD = 2**LEVELS;

wire [PAD-1:0] in_pad;

generate
    if (PAD > WIDTH) begin : g_pad
        assign in_pad = {{(PAD-WIDTH){1'b0}}, in_bits};
    end else begin : g_nopad
        assign in_pad = in_bits;
    end
endgenerate

// level l has PAD >> (l+1) nodes with (l+1)-bit indices; each level reads the previous
// one of the same array (not a loop: UNOPTFLAT only concerns simulation speed)
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNOPTFLAT */
wire [PAD/2-1:0]        lvl_valid [0:LEVELS-1];
wire [PAD/2*LEVELS-1:0] lvl_index [0:LEVELS-1];
/* verilator lint_on UNOPTFLAT */
/* verilator lint_on UNUSEDSIGNAL */

genvar l, n;
generate
    for (l = 0; l < LEVELS; l = l + 1) begin : g_level
        for (n = 0; n < (PAD >> (l+1)); n = n + 1) begin : g_node
            if (l == 0) begin : g_leaf
                assign lvl_valid[0][n] = in_pad[2*n] | in_pad[2*n+1];
                assign lvl_index[0][n] = ~in_pad[2*n] & in_pad[2*n+1];
            end else begin : g_inner
                assign lvl_valid[l][n] = lvl_valid[l-1][2*n] | lvl_valid[l-1][2*n+1];
                assign lvl_index[l][n*(l+1) +: l+1] = (!lvl_valid[l-1][2*n] && lvl_valid[l-1][2*n+1]) ?
                    {1'b1, lvl_index[l-1][(2*n+1)*l +: l]} :
                    {1'b0, lvl_index[l-1][(2*n)*l +: l]};
            end
        end
    end
endgenerate

assign out_valid = lvl_valid[LEVELS-1][0];

generate
    if (INDEX_BITS > LEVELS) begin : g_out_wide
        assign out_index = {{(INDEX_BITS-LEVELS){1'b0}}, lvl_index[LEVELS-1][LEVELS-1:0]};
    end else begin : g_out_narrow
        assign out_index = lvl_index[LEVELS-1][INDEX_BITS-1:0];
    end
endgenerate

endmodule

`resetall
