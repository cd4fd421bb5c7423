/*

pynq-neuro: argmax of the classifier logits

Takes the classifier's LANES logits per step (in_valid, in_base = i*LANES for local
index i; logit o = i*LANES + j is lane j, lanes with o >= NUM_CLASSES are ignored) and
in_last with the last step of a digit. The logits of a digit are collected, then the
largest is found by a tree of comparisons in two pipeline stages (the lowest index wins
ties), and {class, logits} is presented on a valid/ready output with room for two
results. in_ready is low while two results are held (or in flight): the classifier then
waits before its next threshold phase.

Latency: res_valid rises 3 cycles after the cycle of in_last (when the output is free).

*/

`include "pn_prelude.vh"

module pn_argmax #
(
    // output classes (2 or more)
    parameter NUM_CLASSES = 10,
    // logits per step
    parameter LANES = 10,
    // width of the incoming logits (the classifier's accumulator width)
    parameter IN_BITS = 16,
    // width of the result logits (>= IN_BITS, sign-extended)
    parameter LOGIT_BITS = 16,
    // width of in_base
    parameter BASE_BITS = 16
)
(
    input  wire                          clk,
    input  wire                          rst,

    /*
     * Logits from the classifier
     */
    output wire                          in_ready,
    input  wire                          in_valid,
    input  wire [BASE_BITS-1:0]          in_base,
    input  wire [LANES*IN_BITS-1:0]      in_data,
    input  wire                          in_last,

    /*
     * Result
     */
    output wire                          res_valid,
    input  wire                          res_ready,
    output wire [$clog2(NUM_CLASSES)-1:0] res_class,
    output wire [NUM_CLASSES*LOGIT_BITS-1:0] res_logits,

    /*
     * Status
     */
    output wire                          busy
);

// width of a class index, tree levels and the level after which the pipeline register sits
localparam CLASS_BITS = $clog2(NUM_CLASSES);
localparam LEVELS = CLASS_BITS;
localparam MID = (LEVELS + 1) / 2;
// nodes at the pipeline register
localparam MID_NODES = (NUM_CLASSES + (1 << MID) - 1) >> MID;
localparam VEC_BITS = NUM_CLASSES * LOGIT_BITS;

// parameter checks: stop the simulation at time 0 and the synthesis with the message
initial begin
    if (NUM_CLASSES < 2 || LANES < 1 || LOGIT_BITS < IN_BITS)
        `PN_STOP(("pn_argmax: NUM_CLASSES = %0d, LANES = %0d, LOGIT_BITS = %0d < IN_BITS = %0d",
                  NUM_CLASSES, LANES, LOGIT_BITS, IN_BITS))
end

// logits of the digit being collected
reg [VEC_BITS-1:0] vec_reg = {VEC_BITS{1'b0}}, vec_next;
// stage 1: the collected digit
reg s1_valid_reg = 1'b0, s1_valid_next;
// stage 2: partial tree (the logits stay in vec_reg: the classifier's next logits come at
// least 7 cycles after its last ones)
reg s2_valid_reg = 1'b0, s2_valid_next;
reg [MID_NODES*LOGIT_BITS-1:0] s2_val_reg = {MID_NODES*LOGIT_BITS{1'b0}}, s2_val_next;
reg [MID_NODES*CLASS_BITS-1:0] s2_idx_reg = {MID_NODES*CLASS_BITS{1'b0}}, s2_idx_next;
// output and a second result held behind it
reg out_valid_reg = 1'b0, out_valid_next;
reg [CLASS_BITS-1:0] out_class_reg = {CLASS_BITS{1'b0}}, out_class_next;
reg [VEC_BITS-1:0] out_vec_reg = {VEC_BITS{1'b0}}, out_vec_next;
reg hold_valid_reg = 1'b0, hold_valid_next;
reg [CLASS_BITS-1:0] hold_class_reg = {CLASS_BITS{1'b0}}, hold_class_next;
reg [VEC_BITS-1:0] hold_vec_reg = {VEC_BITS{1'b0}}, hold_vec_next;
// digits accepted (last step seen) and not yet delivered
reg [1:0] count_reg = 2'd0, count_next;

assign in_ready = (count_reg < 2'd2);
assign res_valid = out_valid_reg;
assign res_class = out_class_reg;
assign res_logits = out_vec_reg;
assign busy = (count_reg != 2'd0);

// incoming lanes sign-extended to LOGIT_BITS
wire [LANES*LOGIT_BITS-1:0] in_ext;

genvar j;
generate
    for (j = 0; j < LANES; j = j + 1) begin : g_ext
        if (LOGIT_BITS > IN_BITS) begin : g_wide
            assign in_ext[j*LOGIT_BITS +: LOGIT_BITS] =
                {{(LOGIT_BITS-IN_BITS){in_data[j*IN_BITS+IN_BITS-1]}}, in_data[j*IN_BITS +: IN_BITS]};
        end else begin : g_same
            assign in_ext[j*LOGIT_BITS +: LOGIT_BITS] = in_data[j*IN_BITS +: LOGIT_BITS];
        end
    end
endgenerate

// one level of the tree: pairs (2n, 2n+1) -> n, the right one only if strictly larger
task tree_level;
    inout [NUM_CLASSES*LOGIT_BITS-1:0] val;
    inout [NUM_CLASSES*CLASS_BITS-1:0] idx;
    input integer nodes;
    integer n;
    begin
        for (n = 0; 2*n + 1 < NUM_CLASSES; n = n + 1) begin
            if (2*n + 1 < nodes) begin
                if ($signed(val[(2*n+1)*LOGIT_BITS +: LOGIT_BITS]) > $signed(val[(2*n)*LOGIT_BITS +: LOGIT_BITS])) begin
                    val[n*LOGIT_BITS +: LOGIT_BITS] = val[(2*n+1)*LOGIT_BITS +: LOGIT_BITS];
                    idx[n*CLASS_BITS +: CLASS_BITS] = idx[(2*n+1)*CLASS_BITS +: CLASS_BITS];
                end else begin
                    val[n*LOGIT_BITS +: LOGIT_BITS] = val[(2*n)*LOGIT_BITS +: LOGIT_BITS];
                    idx[n*CLASS_BITS +: CLASS_BITS] = idx[(2*n)*CLASS_BITS +: CLASS_BITS];
                end
            end else if (2*n < nodes) begin
                val[n*LOGIT_BITS +: LOGIT_BITS] = val[(2*n)*LOGIT_BITS +: LOGIT_BITS];
                idx[n*CLASS_BITS +: CLASS_BITS] = idx[(2*n)*CLASS_BITS +: CLASS_BITS];
            end
        end
        // an odd last node passes
        if (NUM_CLASSES % 2 == 1 && NUM_CLASSES - 1 < nodes) begin
            val[(NUM_CLASSES/2)*LOGIT_BITS +: LOGIT_BITS] = val[(NUM_CLASSES-1)*LOGIT_BITS +: LOGIT_BITS];
            idx[(NUM_CLASSES/2)*CLASS_BITS +: CLASS_BITS] = idx[(NUM_CLASSES-1)*CLASS_BITS +: CLASS_BITS];
        end
    end
endtask

integer o, l, nodes;
// scratch values of the comparison tree (only the surviving nodes are used)
/* verilator lint_off UNUSEDSIGNAL */
reg [NUM_CLASSES*LOGIT_BITS-1:0] t_val;
reg [NUM_CLASSES*CLASS_BITS-1:0] t_idx;
reg [31:0] o_bits;
/* verilator lint_on UNUSEDSIGNAL */
reg push;
reg pop;

always @* begin
    vec_next = vec_reg;
    s1_valid_next = 1'b0;
    s2_valid_next = 1'b0;
    s2_val_next = s2_val_reg;
    s2_idx_next = s2_idx_reg;
    out_valid_next = out_valid_reg;
    out_class_next = out_class_reg;
    out_vec_next = out_vec_reg;
    hold_valid_next = hold_valid_reg;
    hold_class_next = hold_class_reg;
    hold_vec_next = hold_vec_reg;
    count_next = count_reg;

    // collect: logit o comes on lane o mod LANES in the step with base (o div LANES)*LANES
    if (in_valid) begin
        for (o = 0; o < NUM_CLASSES; o = o + 1) begin
            o_bits = (o / LANES) * LANES;
            if (in_base == o_bits[BASE_BITS-1:0]) begin
                vec_next[o*LOGIT_BITS +: LOGIT_BITS] = in_ext[(o % LANES)*LOGIT_BITS +: LOGIT_BITS];
            end
        end
        s1_valid_next = in_last;
    end

    // stage 1: first levels of the tree over the collected logits
    t_val = vec_reg;
    t_idx = {NUM_CLASSES*CLASS_BITS{1'b0}};
    for (o = 0; o < NUM_CLASSES; o = o + 1) begin
        o_bits = o;
        t_idx[o*CLASS_BITS +: CLASS_BITS] = o_bits[CLASS_BITS-1:0];
    end
    nodes = NUM_CLASSES;
    for (l = 0; l < MID; l = l + 1) begin
        tree_level(t_val, t_idx, nodes);
        nodes = (nodes + 1) / 2;
    end
    if (s1_valid_reg) begin
        s2_valid_next = 1'b1;
        s2_val_next = t_val[MID_NODES*LOGIT_BITS-1:0];
        s2_idx_next = t_idx[MID_NODES*CLASS_BITS-1:0];
    end

    // stage 2: remaining levels
    t_val = {NUM_CLASSES*LOGIT_BITS{1'b0}};
    t_idx = {NUM_CLASSES*CLASS_BITS{1'b0}};
    t_val[MID_NODES*LOGIT_BITS-1:0] = s2_val_reg;
    t_idx[MID_NODES*CLASS_BITS-1:0] = s2_idx_reg;
    nodes = MID_NODES;
    for (l = MID; l < LEVELS; l = l + 1) begin
        tree_level(t_val, t_idx, nodes);
        nodes = (nodes + 1) / 2;
    end

    // two-entry output queue
    push = s2_valid_reg;
    pop = out_valid_reg && res_ready;
    if (pop) begin
        out_valid_next = hold_valid_reg;
        out_class_next = hold_class_reg;
        out_vec_next = hold_vec_reg;
        hold_valid_next = 1'b0;
    end
    if (push) begin
        if (!out_valid_next) begin
            out_valid_next = 1'b1;
            out_class_next = t_idx[CLASS_BITS-1:0];
            out_vec_next = vec_reg;
        end else begin
            hold_valid_next = 1'b1;
            hold_class_next = t_idx[CLASS_BITS-1:0];
            hold_vec_next = vec_reg;
        end
    end

    // digits in the unit: from the last step until the result is taken
    if (in_valid && in_last && !pop) begin
        count_next = count_reg + 1'b1;
    end else if (!(in_valid && in_last) && pop) begin
        count_next = count_reg - 1'b1;
    end
end

always @(posedge clk) begin
    vec_reg <= vec_next;
    s1_valid_reg <= s1_valid_next;
    s2_valid_reg <= s2_valid_next;
    s2_val_reg <= s2_val_next;
    s2_idx_reg <= s2_idx_next;
    out_valid_reg <= out_valid_next;
    out_class_reg <= out_class_next;
    out_vec_reg <= out_vec_next;
    hold_valid_reg <= hold_valid_next;
    hold_class_reg <= hold_class_next;
    hold_vec_reg <= hold_vec_next;
    count_reg <= count_next;

    if (rst) begin
        s1_valid_reg <= 1'b0;
        s2_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        hold_valid_reg <= 1'b0;
        count_reg <= 2'd0;
    end
end

endmodule

`resetall
