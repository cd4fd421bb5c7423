# Fixed names, addresses and settings of the pynq-neuro overlay, shared by package_ip.tcl,
# build_bd.tcl and build_bitstream.tcl. The driver (pynq_neuro/driver/registers.py) holds the
# same VLNV, instance names, addresses and DMA length width; tests/test_overlay.py checks that
# both sides agree (pynq_neuro/overlay_spec.py sources this file in a Tcl interpreter, so it must
# run without Vivado: constants and procs only).
#
# Plain Tcl 8.5 (the interpreter inside Vivado): no lmap, try or string cat.

# target device and board (PYNQ-Z2: Zynq-7020, board files by TUL)
set PN_PART              xc7z020clg400-1
set PN_BOARD_PART        tul.com.tw:pynq-z2:part0:1.0
set PN_VIVADO_VERSION    2022.1

# the core as an IP: vendor:library:name:version, and the HDL module it packages
set PN_IP_VLNV           pynq-neuro.org:pynq_neuro:neuro_core:1.0
set PN_CORE_TOP          neuro_core
set PN_IP_DISPLAY_NAME   "pynq-neuro neuron arrays"

# block design: its name is the name of the .hwh file Vivado writes
set PN_BD_NAME           neuro
set PN_OVERLAY_NAME      neuro

# cell names in the block design (PYNQ exposes them as overlay attributes)
set PN_PS_INSTANCE       processing_system7_0
set PN_CORE_INSTANCE     neuro_core_0
set PN_DMA_INSTANCE      axi_dma_0
set PN_RESET_INSTANCE    rst_ps7_0_100M
set PN_GP0_INTERCONNECT  ps7_0_axi_periph
set PN_HP0_INTERCONNECT  axi_smc
set PN_INTC_INSTANCE     axi_intc_0
set PN_IRQ_CONCAT        xlconcat_0

# the register file of the core: bus interface and address block of the IP
set PN_REGISTER_BUS      s_axil
set PN_ADDRESS_BLOCK     reg0

# address map of the PS's GP0 master
set PN_CORE_BASE         0x43C00000
set PN_CORE_RANGE        0x1000
set PN_DMA_BASE          0x40400000
set PN_DMA_RANGE         0x10000
set PN_INTC_BASE         0x41800000
set PN_INTC_RANGE        0x10000

# AXI DMA, simple mode: buffer length register width (max transfer 2**26-1 bytes) and widths
set PN_DMA_LENGTH_WIDTH  26
set PN_STREAM_BITS       32
set PN_DMA_MM_BITS       32
set PN_DMA_BURST         16

# fabric clock FCLK_CLK0 and the HP0 port width
set PN_FCLK_MHZ          100
set PN_HP0_BITS          64

# 1: route the DMA interrupts through an AXI interrupt controller to IRQ_F2P[0] (the way PYNQ
# expects fabric interrupts); 0: none, the driver polls the DMA status registers
set PN_DMA_INTERRUPTS    0

# Vivado IP versions instantiated in the block design. PYNQ binds its drivers by VLNV
# (pynq.lib.dma.DMA binds xilinx.com:ip:axi_dma:7.1), so these are pinned.
set PN_VLNV_PS7          xilinx.com:ip:processing_system7:5.5
set PN_VLNV_DMA          xilinx.com:ip:axi_dma:7.1
set PN_VLNV_RESET        xilinx.com:ip:proc_sys_reset:5.0
set PN_VLNV_INTERCONNECT xilinx.com:ip:axi_interconnect:2.1
set PN_VLNV_SMARTCONNECT xilinx.com:ip:smartconnect:1.0
set PN_VLNV_INTC         xilinx.com:ip:axi_intc:4.1
set PN_VLNV_CONCAT       xilinx.com:ip:xlconcat:2.1

# ------------------------------------------------------------------------------------------
# the core as an IP: interface of neuro_core (tests/test_overlay.py checks these against
# hdl/neuro_core.v)

set PN_CLOCK_PORT        clk
set PN_RESET_PORT        rst
# neuro_core's rst is synchronous and active high
set PN_RESET_POLARITY    ACTIVE_HIGH

# name, kind (axis | aximm), mode (slave | master), logical -> physical port map
set PN_BUS_INTERFACES {
    s_axis axis slave {
        TDATA  s_axis_tdata
        TVALID s_axis_tvalid
        TREADY s_axis_tready
        TLAST  s_axis_tlast
    }
    m_axis axis master {
        TDATA  m_axis_tdata
        TVALID m_axis_tvalid
        TREADY m_axis_tready
        TLAST  m_axis_tlast
    }
    s_axil aximm slave {
        AWADDR  s_axil_awaddr
        AWPROT  s_axil_awprot
        AWVALID s_axil_awvalid
        AWREADY s_axil_awready
        WDATA   s_axil_wdata
        WSTRB   s_axil_wstrb
        WVALID  s_axil_wvalid
        WREADY  s_axil_wready
        BRESP   s_axil_bresp
        BVALID  s_axil_bvalid
        BREADY  s_axil_bready
        ARADDR  s_axil_araddr
        ARPROT  s_axil_arprot
        ARVALID s_axil_arvalid
        ARREADY s_axil_arready
        RDATA   s_axil_rdata
        RRESP   s_axil_rresp
        RVALID  s_axil_rvalid
        RREADY  s_axil_rready
    }
}

# HDL parameters the IP keeps (and sets); all others keep their neuro_params.vh defaults
set PN_CORE_PARAMETERS   {MEM_DIR}

# files of an artifact the IP needs
set PN_ARTIFACT_FILES    {manifest.json neuro_params.vh}

# ------------------------------------------------------------------------------------------
# helpers

# Value of the command-line option `name` (vivado ... -tclargs -name value ...), else `default`.
proc pn_arg {name default} {
    set i [lsearch -exact $::argv $name]
    if {$i < 0} {
        return $default
    }
    if {$i + 1 >= [llength $::argv]} {
        error "pynq-neuro: option $name needs a value"
    }
    return [lindex $::argv [expr {$i + 1}]]
}

proc pn_info {message} {
    puts "pynq-neuro: $message"
}

# Stop the build with a message that says what is wrong.
proc pn_fail {message} {
    error "pynq-neuro: $message"
}

# The VLNV split into vendor, library, name and version.
proc pn_vlnv_parts {vlnv} {
    set parts [split $vlnv :]
    if {[llength $parts] != 4} {
        pn_fail "VLNV '$vlnv' is not vendor:library:name:version"
    }
    return $parts
}
