/*
 * pn_adder_tree: the sum of N values of WIDTH bits (modulo 2^WIDTH, so signed and unsigned
 * alike) in a balanced tree of ceil(log2 N) levels of adders, combinational. The tree is
 * built recursively: the sum of the first ceil(N/2) values plus the sum of the others.
 */

`include "pn_prelude.vh"

module pn_adder_tree #
(
    // number of values (at least 1)
    parameter N = 2,
    // bits of each value and of the sum
    parameter WIDTH = 8
)
(
    input  wire [N*WIDTH-1:0] in,
    output wire [WIDTH-1:0]   sum
);

// values in the first and in the second subtree
localparam integer N_LOW = (N + 1) / 2;
localparam integer N_HIGH = N - N_LOW;

initial begin
    if (N < 1 || WIDTH < 1)
        `PN_STOP(("pn_adder_tree: N = %0d, WIDTH = %0d", N, WIDTH))
end

generate
    if (N == 1) begin : g_leaf
        assign sum = in;
    end else begin : g_node
        wire [WIDTH-1:0] sum_low;
        wire [WIDTH-1:0] sum_high;

        pn_adder_tree #(
            .N(N_LOW),
            .WIDTH(WIDTH)
        )
        low_inst (
            .in(in[N_LOW*WIDTH-1:0]),
            .sum(sum_low)
        );

        pn_adder_tree #(
            .N(N_HIGH),
            .WIDTH(WIDTH)
        )
        high_inst (
            .in(in[N*WIDTH-1:N_LOW*WIDTH]),
            .sum(sum_high)
        );

        assign sum = sum_low + sum_high;
    end
endgenerate

endmodule

`resetall
