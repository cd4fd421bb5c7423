/*
 * Co-simulation bench of neuro_core for the Verilator engine (built by
 * pynq_neuro/driver/sim_bus.py; protocol described in sim/cosim_server.py). Requests come
 * from the file +req=, replies go to +resp= (pipes). MM2S and S2MM run in their own processes
 * so that a transfer that timed out keeps moving data during later requests, as a real DMA
 * does until it is reset. The clock, the bus signals, the core and the AXI-Lite master come from
 * sim/common/pn_tb_harness.vh (sim/common/ is on the include path of the build).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module tb_cosim;

// capacity of the DMA buffers (words)
localparam MAX_SEND = 1 << 22;
localparam MAX_RECV = 1 << 20;
localparam RESET_CYCLES = 8;

// clock, reset, the bus signals, dut (neuro_core), cycle, axil_write and axil_read
localparam TB_M_TREADY = 1'b0;
`include "pn_tb_harness.vh"

// Requests to the channels: the command process flips a *_req bit, the channel reacts at the
// next rising edge (each variable has a single writer).
reg        mm2s_start_req = 1'b0;
reg        s2mm_start_req = 1'b0;
reg        dma_reset_req = 1'b0;
integer    mm2s_len = 0;
integer    s2mm_limit = 0;

// ---- MM2S: send_mem[0 .. mm2s_len-1], TLAST on the last word
reg [31:0] send_mem [0:MAX_SEND-1];
reg        mm2s_start_seen = 1'b0, mm2s_reset_seen = 1'b0, mm2s_busy = 1'b0;
integer    mm2s_next = 0, mm2s_sent = 0;

always @(posedge clk) begin
    if (dma_reset_req != mm2s_reset_seen) begin
        mm2s_reset_seen <= dma_reset_req;
        mm2s_busy <= 1'b0;
        s_axis_tvalid <= 1'b0;
        s_axis_tlast <= 1'b0;
    end else if (mm2s_start_req != mm2s_start_seen) begin
        mm2s_start_seen <= mm2s_start_req;
        mm2s_busy <= 1'b1;
        mm2s_next <= 0;
        mm2s_sent <= 0;
    end else if (mm2s_busy) begin
        if (s_axis_tvalid && s_axis_tready) begin
            mm2s_sent <= mm2s_sent + 1;
            if (mm2s_sent + 1 == mm2s_len) mm2s_busy <= 1'b0;
        end
        if (mm2s_next < mm2s_len && (!s_axis_tvalid || s_axis_tready)) begin
            s_axis_tdata <= send_mem[mm2s_next];
            s_axis_tvalid <= 1'b1;
            s_axis_tlast <= mm2s_next == mm2s_len - 1;
            mm2s_next <= mm2s_next + 1;
        end else if (s_axis_tvalid && s_axis_tready) begin
            s_axis_tvalid <= 1'b0;
            s_axis_tlast <= 1'b0;
        end
    end
end

// ---- S2MM: one packet into recv_mem, at most s2mm_limit words
reg [31:0] recv_mem [0:MAX_RECV-1];
reg        s2mm_start_seen = 1'b0, s2mm_reset_seen = 1'b0, s2mm_busy = 1'b0;
reg        s2mm_done = 1'b0, s2mm_over = 1'b0;
integer    s2mm_got = 0;

always @(posedge clk) begin
    if (dma_reset_req != s2mm_reset_seen) begin
        s2mm_reset_seen <= dma_reset_req;
        s2mm_busy <= 1'b0;
        m_axis_tready <= 1'b0;
    end else if (s2mm_start_req != s2mm_start_seen) begin
        s2mm_start_seen <= s2mm_start_req;
        s2mm_busy <= 1'b1;
        s2mm_done <= 1'b0;
        s2mm_over <= 1'b0;
        s2mm_got <= 0;
        m_axis_tready <= 1'b1;
    end else if (s2mm_busy && m_axis_tvalid && m_axis_tready) begin
        recv_mem[s2mm_got] <= m_axis_tdata;
        s2mm_got <= s2mm_got + 1;
        if (m_axis_tlast) begin
            s2mm_busy <= 1'b0;
            s2mm_done <= 1'b1;
            m_axis_tready <= 1'b0;
        end else if (s2mm_got + 1 == s2mm_limit) begin
            s2mm_busy <= 1'b0;
            s2mm_over <= 1'b1;
            m_axis_tready <= 1'b0;
        end
    end
end

// ---- request loop

reg [8*1024-1:0] req_name;
reg [8*1024-1:0] resp_name;
integer    req_fd = 0;
integer    resp_fd = 0;
reg [8*8-1:0] op;
reg [31:0] a, b, c;
reg [31:0] word;
reg [63:0] start;
integer    n, i, ok;
reg        running = 1'b1;

initial begin
    if (!$value$plusargs("req=%s", req_name) || !$value$plusargs("resp=%s", resp_name)) begin
        $display("cosim: +req=FILE and +resp=FILE are required");
        running = 1'b0;
    end else begin
        req_fd = $fopen(req_name, "r");
        resp_fd = $fopen(resp_name, "w");
        if (req_fd == 0 || resp_fd == 0) begin
            $display("cosim: cannot open the request or reply pipe");
            running = 1'b0;
        end
    end
    repeat (RESET_CYCLES) @(negedge clk);
    rst = 1'b0;
    repeat (RESET_CYCLES) @(negedge clk);
    if (running) begin
        $fwrite(resp_fd, "HI %0d 0 0\n", cycle);
        $fflush(resp_fd);
    end
    while (running) begin
        n = $fscanf(req_fd, "%s %h %h %h", op, a, b, c);
        if (n != 4) begin
            $display("cosim: request pipe closed after %0d cycles", cycle);
            running = 1'b0;
        end else if (op == "R") begin
            axil_read(a[11:0], word);
            $fwrite(resp_fd, "OK %0d %0h 0\n", cycle, word);
        end else if (op == "W") begin
            axil_write(a[11:0], b);
            $fwrite(resp_fd, "OK %0d 0 0\n", cycle);
        end else if (op == "T") begin
            ok = 1;
            for (i = 0; i < a; i = i + 1) begin
                n = $fscanf(req_fd, "%h", word);
                if (i < MAX_SEND) send_mem[i] = word;
            end
            if (a > MAX_SEND || b > MAX_RECV) begin
                $fwrite(resp_fd, "ER %0d transfer larger than the bench buffers\n", cycle);
                ok = 0;
            end
            if (ok != 0) begin
                @(negedge clk);
                mm2s_len = a;
                s2mm_limit = b;
                if (a != 0) mm2s_start_req = !mm2s_start_req;
                if (b != 0) s2mm_start_req = !s2mm_start_req;
                start = cycle;
                @(negedge clk);
                while ((mm2s_busy || (b != 0 && !s2mm_done && !s2mm_over))
                       && cycle - start < {32'd0, c}) begin
                    @(negedge clk);
                end
                if (s2mm_over) begin
                    $fwrite(resp_fd, "OV %0d %0h 0\n", cycle, s2mm_got);
                end else if (mm2s_busy || (b != 0 && !s2mm_done)) begin
                    $fwrite(resp_fd, "TO %0d %0h %0h\n", cycle, mm2s_sent, s2mm_got);
                end else begin
                    $fwrite(resp_fd, "OK %0d %0h 0\n", cycle, b != 0 ? s2mm_got : 0);
                    if (b != 0) begin
                        for (i = 0; i < s2mm_got; i = i + 1) begin
                            $fwrite(resp_fd, "%h\n", recv_mem[i]);
                        end
                    end
                end
            end
        end else if (op == "D") begin
            @(negedge clk);
            dma_reset_req = !dma_reset_req;
            repeat (4) @(negedge clk);
            $fwrite(resp_fd, "OK %0d 0 0\n", cycle);
        end else if (op == "C") begin
            $fwrite(resp_fd, "OK %0d 0 0\n", cycle);
        end else if (op == "Q") begin
            $fwrite(resp_fd, "OK %0d 0 0\n", cycle);
            running = 1'b0;
        end else begin
            $fwrite(resp_fd, "ER %0d unknown request\n", cycle);
        end
        $fflush(resp_fd);
    end
    $finish;
end

endmodule

`resetall
