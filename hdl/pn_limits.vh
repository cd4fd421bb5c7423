/*
 * pn_limits.vh: what one neuro_core can hold, and how the derived fields of a layer follow
 * from the others. Included in the body of every module that checks its parameters (there
 * is no include guard: each module gets its own copy of the localparams and functions).
 *
 * The LIMIT_* values are generated from pynq_neuro/compiler/limits.py, which the compiler
 * checks every network against; the functions below are the Verilog side of its _derived().
 */

// BEGIN pn_limits: limits of neuro_core, generated from pynq_neuro/compiler/limits.py
// (python -m pynq_neuro.compiler.limits --write); do not edit by hand
/* verilator lint_off UNUSEDPARAM */
localparam integer LIMIT_MAX_LAYERS = 8;            // layers (load_layer[2:0], V_* vectors)
localparam integer LIMIT_LOAD_ADDR_BITS = 16;       // width of load_addr
localparam integer LIMIT_MAX_DEPTH = 65536;         // deepest memory the loader addresses
localparam integer LIMIT_MAX_GROUPS = 256;          // event groups (load_bank[7:0])
localparam integer LIMIT_MAX_WORD_BITS = 8192;      // widest loadable memory word
localparam integer LIMIT_BASE_BITS = 16;            // width of wr_base between the units
localparam integer LIMIT_MAX_CHANNELS = 65536;      // output units per layer
localparam integer LIMIT_LOGIT_BITS = 32;           // widest logit of the result stream
localparam integer LIMIT_NUM_CLASSES = 10;          // classes (logit beats)
localparam integer LIMIT_IMAGE_ROWS = 28;           // rows of a digit (frames of layer 0)
localparam integer LIMIT_IMAGE_COLS = 28;           // pixels of a row (channels of layer 0)
localparam integer LIMIT_MAX_INPUT_BITS = 8;        // input activation bits
localparam integer LIMIT_MAX_WEIGHT_BITS = 8;       // weight code bits
localparam integer LIMIT_MAX_ACT_BITS = 8;          // hidden activation bits
localparam integer LIMIT_IN_FLIGHT = 32;            // digits between input unit and formatter
/* verilator lint_on UNUSEDPARAM */
// END pn_limits

/* verilator lint_off UNUSEDSIGNAL */

// field l (32 bits) of a packed per-layer vector, layer 0 least significant
function integer pn_field;
    input [32*8-1:0] vec;
    input integer l;
    begin
        pn_field = vec[32*l +: 32];
    end
endfunction

function integer pn_ceil_div;
    input integer a;
    input integer b;
    begin
        pn_ceil_div = (a + b - 1) / b;
    end
endfunction

// width of an index over n values (at least 1)
function integer pn_index_width;
    input integer n;
    begin
        pn_index_width = (n > 1) ? $clog2(n) : 1;
    end
endfunction

// output units per lane
function integer pn_locals;
    input integer out_channels;
    input integer lanes;
    begin
        pn_locals = pn_ceil_div(out_channels, lanes);
    end
endfunction

// input channels per event group
function integer pn_local_channels;
    input integer in_channels;
    input integer groups;
    begin
        pn_local_channels = pn_ceil_div(in_channels, groups);
    end
endfunction

// entries per tap of a group's index table: the local channels rounded up to a power of two,
// so that the entry of (tap k, local channel c) is at the address {k, c}
function integer pn_index_stride;
    input integer local_channels;
    begin
        pn_index_stride = 1 << $clog2(local_channels);
    end
endfunction

// entries of a group's index table
function integer pn_index_depth;
    input integer taps;
    input integer in_channels;
    input integer groups;
    begin
        pn_index_depth = taps * pn_index_stride(pn_local_channels(in_channels, groups));
    end
endfunction

// bits of the local index of a lane entry (0 for one local index)
function integer pn_local_bits;
    input integer out_channels;
    input integer lanes;
    begin
        pn_local_bits = $clog2(pn_locals(out_channels, lanes));
    end
endfunction

// bits of a lane entry {code, local, valid}
function integer pn_entry_bits;
    input integer out_channels;
    input integer lanes;
    input integer weight_bits;
    begin
        pn_entry_bits = 1 + pn_local_bits(out_channels, lanes) + weight_bits;
    end
endfunction

// thresholds per neuron: 2^ACT_BITS - 1, or the classifier's bias
function integer pn_levels;
    input integer act_bits;
    input integer is_classifier;
    begin
        pn_levels = (is_classifier != 0) ? 1 : (1 << act_bits) - 1;
    end
endfunction

// output frames of a layer
function integer pn_out_frames;
    input integer in_frames;
    input integer taps;
    input integer stride;
    begin
        pn_out_frames = (in_frames - taps) / stride + 1;
    end
endfunction

/* verilator lint_on UNUSEDSIGNAL */
