/*
 * Plain Verilog bench of neuro_core for whole-test-set regressions (Verilator --binary or
 * Icarus; sim/common/ on the include path for the harness pn_tb_harness.vh).
 *
 * Plusargs:
 *   +pixels=FILE         pixel beats, one 32-bit hex word per line, BEATS per digit
 *   +digits=N            digits in FILE
 *   +beats=BEATS         beats per digit (default 196, four bytes a beat; a packed stream
 *                        has fewer, e.g. 28 for binary pixels)
 *   +results=FILE        output: one line per digit
 *                        "counter class logit0 .. logit9 first_beat_cycle result_cycle",
 *                        then "load STATUS CYCLES" (if a network was loaded) and
 *                        "counters DIGITS CYCLES STALL_CYCLES INPUT_STALL_CYCLES"
 *   +network=FILE        optional: network.bin as hex words, streamed in with LOAD_MODE first
 *   +network_words=N     words in that file
 *   +logits=0|1          LOGITS_ENABLE (default 1)
 *   +stall=P             percent of cycles with m_axis_tready low (default 0)
 *   +seed=S              seed of the back-pressure pattern
 *   +timeout=C           give up after C cycles ("TIMEOUT" on stdout)
 *
 * Both files are read with $readmemh before the simulation starts (at most 16384 digits and
 * 2M network words). Digits are streamed back to back (s_axis_tvalid high whenever a word is left). Cycle stamps
 * count clock cycles from the start of the simulation: first_beat_cycle is the cycle the
 * digit's first beat was accepted, result_cycle the cycle its first result beat was accepted.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module tb_neuro_core;

// register offsets (the map of pynq_neuro/driver/registers.py)
localparam [11:0] A_CONTROL = 12'h008, A_STATUS = 12'h00C, A_DIGITS = 12'h010,
    A_CYCLES = 12'h014, A_STALL = 12'h018, A_INPUT_STALL = 12'h01C;

// capacity of the stimulus memories (words)
localparam MAX_DIGITS = 16384;
localparam MAX_PIXEL_WORDS = 196 * MAX_DIGITS;
localparam MAX_NET_WORDS = 1 << 21;

// clock, reset, the bus signals, dut (neuro_core), cycle, axil_write and axil_read
localparam TB_M_TREADY = 1'b1;
`include "pn_tb_harness.vh"

// ------------------------------------------------------------------------------------------
// settings

reg [8*1024-1:0] pixels_file;
reg [8*1024-1:0] results_file;
reg [8*1024-1:0] network_file;
integer n_digits = 0;
integer n_net_words = 0;
integer logits_en = 1;
integer stall_pct = 0;
integer seed = 1;
integer timeout = 100000000;
reg     have_network = 1'b0;

// ------------------------------------------------------------------------------------------
// source: words from memory, back to back

localparam SRC_PIXELS = 1'b0, SRC_NETWORK = 1'b1;

reg [31:0] pixel_mem [0:MAX_PIXEL_WORDS-1];
reg [31:0] net_mem [0:MAX_NET_WORDS-1];

reg        src_en = 1'b0;
reg        src_mode = SRC_PIXELS;
integer    src_idx = 0;         // next word to put on the bus
integer    src_end = 0;         // words in the stream
integer    src_beat = 0;        // beat of an accepted pixel word within its digit
integer    beats = 196;         // beats per digit (+beats)
integer    digits_in = 0;
reg [63:0] first_beat [0:MAX_DIGITS-1];

always @(posedge clk) begin
    if (s_axis_tvalid && s_axis_tready) begin
        if (src_mode == SRC_PIXELS) begin
            if (src_beat == 0) begin
                first_beat[digits_in % MAX_DIGITS] <= cycle;
            end
            if (src_beat == beats - 1) begin
                src_beat <= 0;
                digits_in <= digits_in + 1;
            end else begin
                src_beat <= src_beat + 1;
            end
        end
        s_axis_tvalid <= 1'b0;
    end
    if (src_en && src_idx < src_end && (!s_axis_tvalid || s_axis_tready)) begin
        s_axis_tdata <= src_mode == SRC_PIXELS ? pixel_mem[src_idx] : net_mem[src_idx];
        s_axis_tvalid <= 1'b1;
        s_axis_tlast <= src_mode == SRC_PIXELS ? (src_idx % beats == beats - 1) : (src_idx == src_end - 1);
        src_idx <= src_idx + 1;
    end
end

// ------------------------------------------------------------------------------------------
// sink: results to a file

integer    res_fd = 0;
integer    out_beat = 0;
integer    results = 0;
reg [31:0] res_word0 = 32'd0;
reg [63:0] res_cycle = 64'd0;
reg [31:0] logit [0:9];
integer    k;

always @(posedge clk) begin
    if (stall_pct != 0) begin
        m_axis_tready <= ($unsigned($random(seed)) % 100) >= stall_pct;
    end
    if (m_axis_tvalid && m_axis_tready) begin
        if (out_beat == 0) begin
            res_word0 = m_axis_tdata;
            res_cycle = cycle;
            for (k = 0; k < 10; k = k + 1) begin
                logit[k] = 32'd0;
            end
        end else if (out_beat <= 10) begin
            logit[out_beat - 1] = m_axis_tdata;
        end
        if (m_axis_tlast) begin
            $fwrite(res_fd, "%0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d %0d\n",
                    res_word0[31:16], res_word0[3:0],
                    $signed(logit[0]), $signed(logit[1]), $signed(logit[2]), $signed(logit[3]),
                    $signed(logit[4]), $signed(logit[5]), $signed(logit[6]), $signed(logit[7]),
                    $signed(logit[8]), $signed(logit[9]),
                    first_beat[results % MAX_DIGITS], res_cycle);
            results = results + 1;
            out_beat = 0;
        end else begin
            out_beat = out_beat + 1;
        end
    end
end

// ------------------------------------------------------------------------------------------
// sequence

reg [31:0] rd;
reg [31:0] c_digits, c_cycles, c_stall, c_input_stall;
reg [63:0] load_start;

always @(posedge clk) begin
    if (cycle >= timeout) begin
        $display("TIMEOUT after %0d cycles: %0d of %0d results", cycle, results, n_digits);
        $fflush(res_fd);
        $finish;
    end
end

initial begin
    if (!$value$plusargs("pixels=%s", pixels_file)) begin
        $display("ERROR: +pixels=FILE missing");
        $finish;
    end
    if (!$value$plusargs("results=%s", results_file)) begin
        results_file = "results.txt";
    end
    if (!$value$plusargs("digits=%d", n_digits)) begin
        n_digits = 1;
    end
    if ($value$plusargs("network=%s", network_file)) begin
        have_network = 1'b1;
        if (!$value$plusargs("network_words=%d", n_net_words)) begin
            $display("ERROR: +network_words=N missing");
            $finish;
        end
    end
    if (!$value$plusargs("beats=%d", beats)) beats = 196;
    if (beats < 1 || beats > 196) begin
        $display("ERROR: +beats=%0d, a digit takes 1..196 beats", beats);
        $finish;
    end
    if (!$value$plusargs("logits=%d", logits_en)) logits_en = 1;
    if (!$value$plusargs("stall=%d", stall_pct)) stall_pct = 0;
    if (!$value$plusargs("seed=%d", seed)) seed = 1;
    if (!$value$plusargs("timeout=%d", timeout)) timeout = 100000000;

    if (n_digits > MAX_DIGITS || n_net_words > MAX_NET_WORDS) begin
        $display("ERROR: at most %0d digits and %0d network words", MAX_DIGITS, MAX_NET_WORDS);
        $finish;
    end
    $readmemh(pixels_file, pixel_mem, 0, beats * n_digits - 1);
    if (have_network) begin
        $readmemh(network_file, net_mem, 0, n_net_words - 1);
    end
    res_fd = $fopen(results_file, "w");

    repeat (10) @(negedge clk);
    rst = 1'b0;
    repeat (10) @(negedge clk);

    if (have_network) begin
        // stream network.bin with LOAD_MODE
        axil_write(A_CONTROL, 32'h4);
        load_start = cycle;
        src_mode = SRC_NETWORK;
        src_idx = 0;
        src_end = n_net_words;
        src_en = 1'b1;
        rd = 32'd0;
        while (!rd[16]) axil_read(A_STATUS, rd);
        $fwrite(res_fd, "load %0d %0d\n", rd, cycle - load_start);
        if (!rd[17]) begin
            $display("ERROR: load failed, STATUS %h", rd);
        end
        @(negedge clk);
        src_en = 1'b0;
    end

    axil_write(A_CONTROL, (logits_en != 0 ? 32'h2 : 32'h0) | 32'h10);

    @(negedge clk);
    src_mode = SRC_PIXELS;
    src_idx = 0;
    src_end = beats * n_digits;
    src_en = 1'b1;

    wait (results >= n_digits);
    repeat (4) @(negedge clk);
    axil_read(A_DIGITS, c_digits);
    axil_read(A_CYCLES, c_cycles);
    axil_read(A_STALL, c_stall);
    axil_read(A_INPUT_STALL, c_input_stall);
    $fwrite(res_fd, "counters %0d %0d %0d %0d\n", c_digits, c_cycles, c_stall, c_input_stall);
    $fclose(res_fd);
    $display("DONE %0d digits in %0d cycles", results, cycle);
    $finish;
end

endmodule

`resetall
