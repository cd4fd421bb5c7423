/*
 * pn_regmap.vh: the register map of neuro_core (byte offsets, CONTROL and STATUS bits, the
 * LAYER[l].FIELD[f] block) and the core version, included in the body of pn_axil_regs (no
 * include guard: each module that includes it gets its own localparams).
 *
 * This whole file is generated from pynq_neuro/driver/registers.py; regenerate it with
 *     python -m pynq_neuro.driver.registers --write
 * (--check exits 1 when it is stale). Do not edit by hand.
 */

// BEGIN pn_regmap: register map of neuro_core, generated from pynq_neuro/driver/registers.py
// (python -m pynq_neuro.driver.registers --write); do not edit by hand
/* verilator lint_off UNUSEDPARAM */
localparam ADDR_WIDTH = 12;                                 // byte address bits (range 0x1000)
localparam [31:0] ID_VALUE = 32'h504E4E31;                  // ID register value
localparam CORE_VERSION = 1;                                // VERSION register, low half
localparam [ADDR_WIDTH-1:0] A_ID = 12'h000;                 // R
localparam [ADDR_WIDTH-1:0] A_VERSION = 12'h004;            // R
localparam [ADDR_WIDTH-1:0] A_CONTROL = 12'h008;            // RW
localparam [ADDR_WIDTH-1:0] A_STATUS = 12'h00C;             // R
localparam [ADDR_WIDTH-1:0] A_DIGITS = 12'h010;             // R
localparam [ADDR_WIDTH-1:0] A_CYCLES = 12'h014;             // R
localparam [ADDR_WIDTH-1:0] A_STALL_CYCLES = 12'h018;       // R
localparam [ADDR_WIDTH-1:0] A_INPUT_STALL_CYCLES = 12'h01C; // R
localparam [ADDR_WIDTH-1:0] A_LOAD_ADDR = 12'h020;          // W, reserved
localparam [ADDR_WIDTH-1:0] A_LOAD_DATA = 12'h024;          // W
localparam [ADDR_WIDTH-1:0] A_BATCH = 12'h028;              // RW
localparam [ADDR_WIDTH-1:0] A_NUM_LAYERS = 12'h040;         // R
localparam [ADDR_WIDTH-1:0] A_INPUT_BITS = 12'h044;         // R
localparam [ADDR_WIDTH-1:0] A_FINGERPRINT_LO = 12'h048;     // R
localparam [ADDR_WIDTH-1:0] A_FINGERPRINT_HI = 12'h04C;     // R
localparam [ADDR_WIDTH-1:0] A_PIXEL_STREAM = 12'h050;       // R
localparam NUM_FIELDS = 25;                                 // fields per layer
localparam LAYER_SHIFT = 7;                                 // LAYER[l].FIELD[f] at 0x100 + 0x80*l + 4*f
localparam [4:0] LAYER_BLOCK_FIRST = 5'd2;                  // address bits above LAYER_SHIFT of layer 0
localparam CONTROL_SOFT_RESET = 0;                          // CONTROL bit 0
localparam CONTROL_LOGITS_ENABLE = 1;                       // CONTROL bit 1
localparam CONTROL_LOAD_MODE = 2;                           // CONTROL bit 2
localparam CONTROL_CLEAR_ERROR = 3;                         // CONTROL bit 3
localparam CONTROL_CLEAR_COUNTERS = 4;                      // CONTROL bit 4
localparam STATUS_BUSY = 0;                                 // STATUS bit 0
localparam STATUS_ERROR = 1;                                // STATUS bit 1
localparam STATUS_ERROR_CODE = 8;                           // STATUS bits 15:8
localparam STATUS_ERROR_CODE_WIDTH = 8;
localparam STATUS_LOAD_DONE = 16;                           // STATUS bit 16
localparam STATUS_LOAD_OK = 17;                             // STATUS bit 17
localparam PIXEL_STREAM_PACKED = 0;                         // PIXEL_STREAM bit 0
localparam PIXEL_STREAM_PIXELS_PER_BEAT = 8;                // PIXEL_STREAM bits 15:8
localparam PIXEL_STREAM_PIXELS_PER_BEAT_WIDTH = 8;
/* verilator lint_on UNUSEDPARAM */
// END pn_regmap
