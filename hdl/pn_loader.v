/*
 * Loader: parses a network.bin load stream and writes the memories of the datapath.
 *
 * Stream (32-bit words, little endian): magic "PNNB", version, number of banks, payload words,
 * then per bank a 4-word header {bank[7:0], kind[7:0], layer[15:0]}, depth, width, n and n data
 * words (each memory word in ceil(width/32) chunks, least significant first), and finally the
 * CRC-32 (IEEE) of the payload. The banks must come in the order of the artifact (per layer:
 * synapse banks of groups 0..G-1, index banks of groups 0..G-1, parameter bank) with exactly the
 * depths and widths this core was synthesized for.
 *
 * Words come from s_axis (TLAST on the CRC word) or from AXI-Lite LOAD_DATA writes (lite_*);
 * the source of the magic word is the source of the whole stream. A new stream starts only
 * while the datapath is idle (idle_ok).
 *
 * Errors (first one reported, the load ends with load_ok low):
 *   3  bad magic or version
 *   4  number of banks or a bank header differs from the synthesized memories
 *   5  CRC mismatch
 *   6  payload length differs, TLAST before the CRC word or missing on it
 * After an error the rest of an s_axis stream is discarded up to TLAST; an AXI-Lite stream is
 * discarded until clear.
 */

`include "pn_prelude.vh"

module pn_loader #
(
    // number of layers synthesized (1..8)
    parameter NUM_LAYERS = 1,
    // per-layer hardware fields, 32 bits per layer, layer 0 least significant (`PN_V_<FIELD>
    // has 32 bits per synthesized layer and is zero-extended here, hence no WIDTH lint)
    /* verilator lint_off WIDTH */
    parameter [32*8-1:0] V_GROUPS = {8{32'd1}},
    // synapse word width per layer
    parameter [32*8-1:0] V_WORD_BITS = {8{32'd1}},
    // synapse bank depth per layer
    parameter [32*8-1:0] V_SYNAPSE_DEPTH = {8{32'd1}},
    // index entry width per layer
    parameter [32*8-1:0] V_INDEX_BITS = {8{32'd1}},
    // index bank depth per layer
    parameter [32*8-1:0] V_INDEX_DEPTH = {8{32'd1}},
    // lanes per layer (parameter word = LANES * PARAM_BITS bits)
    parameter [32*8-1:0] V_LANES = {8{32'd1}},
    // parameter bits per lane per layer
    parameter [32*8-1:0] V_PARAM_BITS = {8{32'd1}},
    // parameter bank depth (local indices) per layer
    parameter [32*8-1:0] V_LOCALS = {8{32'd1}},
    /* verilator lint_on WIDTH */
    // width of the load data port (the widest memory word)
    parameter LOAD_BITS = 32,
    // load stream format version accepted
    parameter FORMAT_VERSION = 2
)
(
    input  wire                 clk,
    input  wire                 rst,

    // load stream over AXI4-Stream
    `PN_S_AXIS_PORTS,

    // load stream over AXI-Lite (LOAD_DATA writes)
    `PN_LITE_PORTS(input, output),

    // ends the discarding of an AXI-Lite stream after an error
    input  wire                 clear,
    // the datapath is idle: a new stream may start
    input  wire                 idle_ok,

    // memory write port of the datapath
    `PN_LOAD_PORTS(output),

    // status
    output wire                 active,
    output wire                 load_start,
    output wire                 load_done,
    output wire                 load_ok,
    output wire                 error_valid,
    output wire [7:0]           error_code
);

// limits of the core and the derived fields of a layer
`include "pn_limits.vh"

// widest memory word in 32-bit chunks
localparam CHUNKS_MAX = (LOAD_BITS + 31) / 32;
localparam [31:0] MAGIC = 32'h424E4E50; // "PNNB" read as a little-endian word

localparam [2:0]
    ST_IDLE = 3'd0,
    ST_HEADER = 3'd1,
    ST_BANK_HDR = 3'd2,
    ST_BANK_DATA = 3'd3,
    ST_CRC = 3'd4,
    ST_DISCARD = 3'd5;

localparam [1:0]
    KIND_SYN = 2'd0,
    KIND_IDX = 2'd1,
    KIND_PAR = 2'd2;

function [31:0] chunks;
    input [31:0] width;
    begin
        chunks = (width + 32'd31) >> 5;
    end
endfunction

// per-layer vectors derived from two others (a, b); field l of the result, by op:
localparam [1:0]
    LV_PRODUCT = 2'd0,      // a * b
    LV_WORDS = 2'd1,        // a * chunks(b): 32-bit words of a bank of depth a and width b
    LV_LAST_CHUNK = 2'd2,   // chunks(b) - 1: last chunk index of a word of width b
    LV_LAST = 2'd3;         // a - 1: last address of a bank of depth a (last group: a = groups)

function [32*8-1:0] layer_vec;
    input [1:0] op;
    input [32*8-1:0] a;
    input [32*8-1:0] b;
    integer l;
    reg [31:0] fa, fb;
    begin
        layer_vec = {32*8{1'b0}};
        for (l = 0; l < 8; l = l + 1) begin
            fa = pn_field(a, l);
            fb = pn_field(b, l);
            case (op)
                LV_PRODUCT: layer_vec[32*l +: 32] = fa * fb;
                LV_WORDS: layer_vec[32*l +: 32] = fa * chunks(fb);
                LV_LAST_CHUNK: layer_vec[32*l +: 32] = chunks(fb) - 32'd1;
                default: layer_vec[32*l +: 32] = fa - 32'd1;
            endcase
        end
    end
endfunction

localparam [32*8-1:0] V_ZERO = {32*8{1'b0}};
// parameter word width per layer
localparam [32*8-1:0] V_PAR_WIDTH = layer_vec(LV_PRODUCT, V_LANES, V_PARAM_BITS);

localparam [32*8-1:0] V_SYN_LAST_CHUNK = layer_vec(LV_LAST_CHUNK, V_ZERO, V_WORD_BITS);
localparam [32*8-1:0] V_IDX_LAST_CHUNK = layer_vec(LV_LAST_CHUNK, V_ZERO, V_INDEX_BITS);
localparam [32*8-1:0] V_PAR_LAST_CHUNK = layer_vec(LV_LAST_CHUNK, V_ZERO, V_PAR_WIDTH);
localparam [32*8-1:0] V_LAST_GROUP = layer_vec(LV_LAST, V_GROUPS, V_ZERO);
localparam [32*8-1:0] V_SYN_LAST_ADDR = layer_vec(LV_LAST, V_SYNAPSE_DEPTH, V_ZERO);
localparam [32*8-1:0] V_IDX_LAST_ADDR = layer_vec(LV_LAST, V_INDEX_DEPTH, V_ZERO);
localparam [32*8-1:0] V_PAR_LAST_ADDR = layer_vec(LV_LAST, V_LOCALS, V_ZERO);

localparam [32*8-1:0] V_SYN_WORDS = layer_vec(LV_WORDS, V_SYNAPSE_DEPTH, V_WORD_BITS);
localparam [32*8-1:0] V_IDX_WORDS = layer_vec(LV_WORDS, V_INDEX_DEPTH, V_INDEX_BITS);
localparam [32*8-1:0] V_PAR_WORDS = layer_vec(LV_WORDS, V_LOCALS, V_PAR_WIDTH);

// banks (words = 0) or payload words (words = 1) of the stream of the first `layers` layers:
// per layer G synapse and G index banks and a parameter bank, each a 4-word header and data
function [31:0] stream_size;
    input integer layers;
    input words;
    integer l;
    begin
        stream_size = 32'd0;
        for (l = 0; l < layers; l = l + 1) begin
            stream_size = stream_size + (words ?
                pn_field(V_GROUPS, l) * (8 + pn_field(V_SYN_WORDS, l) + pn_field(V_IDX_WORDS, l)) +
                    4 + pn_field(V_PAR_WORDS, l) :
                2 * pn_field(V_GROUPS, l) + 1);
        end
    end
endfunction

localparam [31:0] NUM_BANKS = stream_size(NUM_LAYERS, 1'b0);
localparam [31:0] LAST_LAYER_W = NUM_LAYERS - 1;
localparam [2:0] LAST_LAYER = LAST_LAYER_W[2:0];
localparam [31:0] PAYLOAD_WORDS = stream_size(NUM_LAYERS, 1'b1);

// field of layer `layer` in the vector of bank kind `kind` (synapse, index, parameter bank)
function [31:0] kind_field;
    input [1:0] kind;
    input [2:0] layer;
    input [32*8-1:0] syn;
    input [32*8-1:0] idx;
    input [32*8-1:0] par;
    begin
        kind_field = kind == KIND_SYN ? syn[32*layer +: 32] :
                     kind == KIND_IDX ? idx[32*layer +: 32] : par[32*layer +: 32];
    end
endfunction

// CRC-32 (IEEE 802.3, reflected) of one little-endian 32-bit word
function [31:0] crc32_word;
    input [31:0] crc;
    input [31:0] data;
    integer i;
    reg [31:0] c;
    begin
        c = crc;
        for (i = 0; i < 32; i = i + 1) begin
            c = (c >> 1) ^ ((c[0] ^ data[i]) ? 32'hEDB88320 : 32'h00000000);
        end
        crc32_word = c;
    end
endfunction

reg [2:0]  state_reg = ST_IDLE, state_next;
reg        src_lite_reg = 1'b0, src_lite_next;
reg [1:0]  cnt_reg = 2'd0, cnt_next;         // header word index
reg [2:0]  layer_reg = 3'd0, layer_next;     // current bank
reg [1:0]  kind_reg = KIND_SYN, kind_next;
reg [7:0]  bank_reg = 8'd0, bank_next;
reg [15:0] addr_reg = 16'd0, addr_next;      // memory word within the bank
reg [7:0]  chunk_reg = 8'd0, chunk_next;     // 32-bit chunk within the memory word
reg [31:0] crc_reg = 32'hFFFFFFFF, crc_next;
reg        chunk_we;                         // in_data is the next chunk of a memory word

reg        load_we_reg = 1'b0, load_we_next;
reg [28:0] load_pos_reg = 29'd0;              // {layer, kind, bank, addr} of the word written

// memory word being assembled: chunk k in bits 32k+31:32k; complete in the cycle load_we is
// high. Bits above the current bank's width hold stale chunks: every memory takes only its own
// width (one clock enable per chunk, no multiplexer in front of the flip-flops)
/* verilator lint_off UNUSEDSIGNAL */ // bits above LOAD_BITS (the last chunk's padding)
wire [CHUNKS_MAX*32-1:0] word_data;
/* verilator lint_on UNUSEDSIGNAL */

reg       load_start_reg = 1'b0, load_start_next;
reg       load_done_reg = 1'b0, load_done_next;
reg       load_ok_reg = 1'b0, load_ok_next;
reg       error_valid_reg = 1'b0, error_valid_next;
reg [7:0] error_code_reg = 8'd0, error_code_next;

// word input: in IDLE the AXI-Lite port has priority; afterwards the stream's source
wire in_lite = state_reg == ST_IDLE ? lite_valid : src_lite_reg;
wire lite_ready_int = state_reg == ST_IDLE ? idle_ok : src_lite_reg;
wire s_axis_tready_int = state_reg == ST_IDLE ? idle_ok && !lite_valid : !src_lite_reg;

reg [7:0]  word_err;                         // error code of the current word, 0: none

assign s_axis_tready = s_axis_tready_int;
assign lite_ready = lite_ready_int;

wire        in_valid = in_lite ? lite_valid && lite_ready_int : s_axis_tvalid && s_axis_tready_int;
wire [31:0] in_data = in_lite ? lite_data : s_axis_tdata;
wire        in_last = !in_lite && s_axis_tlast;   // AXI-Lite streams have no TLAST

// expected shape of the current bank: the field of its layer for its kind
wire [31:0] exp_depth = kind_field(kind_reg, layer_reg, V_SYNAPSE_DEPTH, V_INDEX_DEPTH, V_LOCALS);
wire [31:0] exp_width = kind_field(kind_reg, layer_reg, V_WORD_BITS, V_INDEX_BITS, V_PAR_WIDTH);
wire [31:0] exp_words = kind_field(kind_reg, layer_reg, V_SYN_WORDS, V_IDX_WORDS, V_PAR_WORDS);
wire [31:0] exp_last_chunk = kind_field(kind_reg, layer_reg, V_SYN_LAST_CHUNK, V_IDX_LAST_CHUNK,
                                        V_PAR_LAST_CHUNK);
wire [31:0] exp_last_addr = kind_field(kind_reg, layer_reg, V_SYN_LAST_ADDR, V_IDX_LAST_ADDR,
                                       V_PAR_LAST_ADDR);

wire [7:0]  last_group = V_LAST_GROUP[32*layer_reg +: 8];
// the parameter checks keep the last chunk below 256 and the last address below 65,536
wire        last_chunk = {24'd0, chunk_reg} == exp_last_chunk;
wire        last_addr = {16'd0, addr_reg} == exp_last_addr;
wire        last_layer = layer_reg == LAST_LAYER;

// header word cnt_reg and the error of a mismatch: the stream header (words 1..3 after the
// magic: version, banks, payload words) or a bank header (words 0..3)
wire [31:0] hdr_expect = state_reg == ST_HEADER ?
                             (cnt_reg == 2'd1 ? FORMAT_VERSION :
                              cnt_reg == 2'd2 ? NUM_BANKS : PAYLOAD_WORDS) :
                         cnt_reg == 2'd0 ? {bank_reg, 6'd0, kind_reg, 13'd0, layer_reg} :
                         cnt_reg == 2'd1 ? exp_depth :
                         cnt_reg == 2'd2 ? exp_width : exp_words;
wire [7:0]  hdr_mismatch = state_reg == ST_BANK_HDR || cnt_reg == 2'd2 ? 8'd4 :
                           cnt_reg == 2'd1 ? 8'd3 : 8'd6;

always @* begin
    state_next = state_reg;
    src_lite_next = src_lite_reg;
    cnt_next = cnt_reg;
    layer_next = layer_reg;
    kind_next = kind_reg;
    bank_next = bank_reg;
    addr_next = addr_reg;
    chunk_next = chunk_reg;
    crc_next = crc_reg;
    chunk_we = 1'b0;
    load_we_next = 1'b0;
    load_start_next = 1'b0;
    load_done_next = 1'b0;
    load_ok_next = load_ok_reg;
    error_valid_next = 1'b0;
    error_code_next = error_code_reg;
    word_err = 8'd0;

    if (in_valid) begin
        case (state_reg)
            ST_IDLE: begin
                src_lite_next = in_lite;
                load_start_next = 1'b1;
                load_ok_next = 1'b0;
                cnt_next = 2'd1;
                if (in_data != MAGIC) begin
                    word_err = 8'd3;
                end else if (in_last) begin
                    word_err = 8'd6;
                end else begin
                    state_next = ST_HEADER;
                end
            end
            ST_HEADER, ST_BANK_HDR: begin
                // the CRC covers the payload: the bank headers and data
                if (state_reg == ST_BANK_HDR) begin
                    crc_next = crc32_word(crc_reg, in_data);
                end
                cnt_next = cnt_reg + 2'd1;
                if (in_data != hdr_expect) begin
                    word_err = hdr_mismatch;
                end else if (in_last) begin
                    word_err = 8'd6;
                end else if (cnt_reg == 2'd3 && state_reg == ST_HEADER) begin
                    // the payload starts with the first bank of the artifact
                    state_next = ST_BANK_HDR;
                    layer_next = 3'd0;
                    kind_next = KIND_SYN;
                    bank_next = 8'd0;
                    crc_next = 32'hFFFFFFFF;
                end else if (cnt_reg == 2'd3) begin
                    state_next = ST_BANK_DATA;
                    addr_next = 16'd0;
                    chunk_next = 8'd0;
                end
            end
            ST_BANK_DATA: begin
                crc_next = crc32_word(crc_reg, in_data);
                chunk_we = 1'b1;
                chunk_next = chunk_reg + 8'd1;
                if (last_chunk) begin
                    load_we_next = 1'b1;
                    chunk_next = 8'd0;
                    addr_next = addr_reg + 16'd1;
                end
                if (in_last) begin
                    word_err = 8'd6;
                end else if (last_chunk && last_addr) begin
                    // bank complete: the next one in artifact order
                    state_next = ST_BANK_HDR;
                    cnt_next = 2'd0;
                    bank_next = bank_reg + 8'd1;
                    if (kind_reg != KIND_PAR && bank_reg == last_group) begin
                        kind_next = kind_reg + 2'd1;
                        bank_next = 8'd0;
                    end else if (kind_reg == KIND_PAR) begin
                        kind_next = KIND_SYN;
                        bank_next = 8'd0;
                        layer_next = layer_reg + 3'd1;
                        if (last_layer) begin
                            state_next = ST_CRC;
                        end
                    end
                end
            end
            ST_CRC: begin
                if (in_data != ~crc_reg) begin
                    word_err = 8'd5;
                end else if (!in_last && !src_lite_reg) begin
                    word_err = 8'd6;
                end else begin
                    state_next = ST_IDLE;
                    load_done_next = 1'b1;
                    load_ok_next = 1'b1;
                end
            end
            default: begin
                // ST_DISCARD
                if (in_last) begin
                    state_next = ST_IDLE;
                end
            end
        endcase

        if (word_err != 8'd0) begin
            // this word failed: report, end the load, discard the rest of the stream
            error_valid_next = 1'b1;
            error_code_next = word_err;
            load_done_next = 1'b1;
            load_ok_next = 1'b0;
            state_next = in_last ? ST_IDLE : ST_DISCARD;
        end
    end

    if (state_reg == ST_DISCARD && src_lite_reg && clear) begin
        state_next = ST_IDLE;
    end
end

always @(posedge clk) begin
    state_reg <= state_next;
    src_lite_reg <= src_lite_next;
    cnt_reg <= cnt_next;
    layer_reg <= layer_next;
    kind_reg <= kind_next;
    bank_reg <= bank_next;
    addr_reg <= addr_next;
    chunk_reg <= chunk_next;
    crc_reg <= crc_next;
    load_we_reg <= load_we_next;
    load_start_reg <= load_start_next;
    load_done_reg <= load_done_next;
    load_ok_reg <= load_ok_next;
    error_valid_reg <= error_valid_next;
    error_code_reg <= error_code_next;

    if (load_we_next) begin
        load_pos_reg <= {layer_reg, kind_reg, bank_reg, addr_reg};
    end

    if (rst) begin
        state_reg <= ST_IDLE;
        src_lite_reg <= 1'b0;
        load_we_reg <= 1'b0;
        load_start_reg <= 1'b0;
        load_done_reg <= 1'b0;
        load_ok_reg <= 1'b0;
        error_valid_reg <= 1'b0;
        error_code_reg <= 8'd0;
    end
end

// parameter checks: memories the loader cannot address or assemble stop the simulation at
// time 0 and the synthesis with the message
initial begin
    if (NUM_LAYERS < 1 || NUM_LAYERS > LIMIT_MAX_LAYERS)
        `PN_STOP(("pn_loader: NUM_LAYERS = %0d, load_layer addresses 1..%0d layers", NUM_LAYERS,
                  LIMIT_MAX_LAYERS))
    if (LOAD_BITS < 1 || LOAD_BITS > LIMIT_MAX_WORD_BITS)
        `PN_STOP(("pn_loader: LOAD_BITS = %0d, a memory word has at most %0d bits (%0d chunks)",
                  LOAD_BITS, LIMIT_MAX_WORD_BITS, LIMIT_MAX_WORD_BITS / 32))
end

genvar cl;
generate
    for (cl = 0; cl < NUM_LAYERS && cl < LIMIT_MAX_LAYERS; cl = cl + 1) begin : g_check
        localparam integer C_GROUPS = V_GROUPS[32*cl +: 32];
        localparam integer C_SYN_DEPTH = V_SYNAPSE_DEPTH[32*cl +: 32];
        localparam integer C_IDX_DEPTH = V_INDEX_DEPTH[32*cl +: 32];
        localparam integer C_PAR_DEPTH = V_LOCALS[32*cl +: 32];
        localparam integer C_SYN_WIDTH = V_WORD_BITS[32*cl +: 32];
        localparam integer C_IDX_WIDTH = V_INDEX_BITS[32*cl +: 32];
        localparam integer C_PAR_WIDTH = V_PAR_WIDTH[32*cl +: 32];

        initial begin
            if (C_GROUPS < 1 || C_GROUPS > LIMIT_MAX_GROUPS)
                `PN_STOP(("pn_loader: layer %0d has %0d groups, load_bank addresses 1..%0d", cl,
                          C_GROUPS, LIMIT_MAX_GROUPS))
            if (C_SYN_DEPTH < 1 || C_SYN_DEPTH > LIMIT_MAX_DEPTH || C_IDX_DEPTH < 1 ||
                    C_IDX_DEPTH > LIMIT_MAX_DEPTH || C_PAR_DEPTH < 1 ||
                    C_PAR_DEPTH > LIMIT_MAX_DEPTH)
                `PN_STOP(("pn_loader: layer %0d memories of %0d, %0d and %0d words; load_addr addresses %0d",
                          cl, C_SYN_DEPTH, C_IDX_DEPTH, C_PAR_DEPTH, LIMIT_MAX_DEPTH))
            if (C_SYN_WIDTH < 1 || C_SYN_WIDTH > LOAD_BITS || C_IDX_WIDTH < 1 ||
                    C_IDX_WIDTH > LOAD_BITS || C_PAR_WIDTH < 1 || C_PAR_WIDTH > LOAD_BITS)
                `PN_STOP(("pn_loader: layer %0d memory words of %0d, %0d and %0d bits, LOAD_BITS = %0d",
                          cl, C_SYN_WIDTH, C_IDX_WIDTH, C_PAR_WIDTH, LOAD_BITS))
        end
    end
endgenerate

genvar ci;
generate
    for (ci = 0; ci < CHUNKS_MAX; ci = ci + 1) begin : chunk
        localparam [7:0] CI = ci;
        reg [31:0] data_reg = 32'd0;
        always @(posedge clk) begin
            if (chunk_we && chunk_reg == CI) begin
                data_reg <= in_data;
            end
        end
        assign word_data[ci*32 +: 32] = data_reg;
    end
endgenerate

assign load_we = load_we_reg;
assign {load_layer, load_kind, load_bank, load_addr} = load_pos_reg;
assign load_data = word_data[LOAD_BITS-1:0];

assign active = state_reg != ST_IDLE;
assign load_start = load_start_reg;
assign load_done = load_done_reg;
assign load_ok = load_ok_reg;
assign error_valid = error_valid_reg;
assign error_code = error_code_reg;

endmodule

`resetall
