# Create the Vivado project and the block design of the pynq-neuro overlay for the PYNQ-Z2:
#
#   PS7 M_AXI_GP0 -> AXI interconnect -> neuro_core_0/s_axil   (0x43C00000, 4 KiB)
#                                      -> axi_dma_0/S_AXI_LITE  (0x40400000, 64 KiB)
#   axi_dma_0/M_AXIS_MM2S -> neuro_core_0/s_axis
#   neuro_core_0/m_axis   -> axi_dma_0/S_AXIS_S2MM
#   axi_dma_0/M_AXI_MM2S, M_AXI_S2MM -> SmartConnect -> PS7 S_AXI_HP0 (DDR)
#   FCLK_CLK0 clocks everything at the clock the artifact was compiled for (manifest.json,
#   performance.budget.clock_mhz; PN_FCLK_MHZ without -artifact); proc_sys_reset makes the
#   resets (neuro_core takes the active-high peripheral_reset, the AXI IP the active-low
#   peripheral_aresetn)
#
#   vivado -mode batch -source build_bd.tcl -tclargs [-ip_repo DIR] [-project DIR]
#          [-artifact DIR] [-board_repo DIR] [-part_only 1]
#
# Needs the IP written by package_ip.tcl and the PYNQ-Z2 board files (see README.md).
# -part_only 1 builds without the board files: the PS7 keeps its default configuration, which
# PYNQ does not use when it loads the overlay (only the PL and the FCLK0 frequency matter).

set here [file dirname [file normalize [info script]]]
source [file join $here config.tcl]

set ip_repo    [file normalize [pn_arg -ip_repo [file join $here build ip_repo]]]
set proj_dir   [file normalize [pn_arg -project [file join $here build project]]]
set board_repo [pn_arg -board_repo ""]
set part_only  [pn_arg -part_only 0]
set artifact   [pn_arg -artifact ""]

# The clock an artifact was compiled for: every "clock_mhz" of its manifest.json (the compile
# configuration and the performance section) must agree; none: PN_FCLK_MHZ.
proc pn_artifact_clock {dir} {
    set path [file join $dir manifest.json]
    if {![file isfile $path]} {
        pn_fail "no $path: compile the network first (pynq-neuro compile ... -o $dir)"
    }
    set fd [open $path r]
    set text [read $fd]
    close $fd
    set found {}
    foreach {match value} [regexp -all -inline {"clock_mhz":\s*([0-9][0-9.eE+-]*)} $text] {
        if {[lsearch -exact $found $value] < 0} {
            lappend found $value
        }
    }
    if {[llength $found] == 0} {
        return $::PN_FCLK_MHZ
    }
    if {[llength $found] > 1} {
        pn_fail "$path names several clocks ($found): recompile it"
    }
    set mhz [lindex $found 0]
    if {![string is double -strict $mhz] || $mhz <= 0} {
        pn_fail "$path: clock_mhz $mhz is not a positive number"
    }
    return $mhz
}

set fclk_mhz $PN_FCLK_MHZ
if {$artifact ne ""} {
    set fclk_mhz [pn_artifact_clock [file normalize $artifact]]
}
pn_info "FCLK0 $fclk_mhz MHz"

# ------------------------------------------------------------------------------------------
# project

set version [version -short]
if {[string first $PN_VIVADO_VERSION $version] != 0} {
    pn_info "WARNING: written for Vivado $PN_VIVADO_VERSION, running $version (see README.md)"
}
if {$board_repo ne ""} {
    set_param board.repoPaths [list [file normalize $board_repo]]
}
set use_board [expr {!$part_only}]
if {$use_board && [get_board_parts -quiet $PN_BOARD_PART] eq ""} {
    pn_fail "board part $PN_BOARD_PART is not installed. Install the PYNQ-Z2 board files\
        into Vivado's board store, or pass -board_repo DIR (the folder that holds pynq-z2/),\
        or build without them with -part_only 1"
}

create_project -force pn_overlay $proj_dir -part $PN_PART
if {$use_board} {
    set_property board_part $PN_BOARD_PART [current_project]
}
set_property target_language Verilog [current_project]
set_property ip_repo_paths [list $ip_repo] [current_project]
update_ip_catalog -rebuild
if {[get_ipdefs -quiet $PN_IP_VLNV] eq ""} {
    pn_fail "IP $PN_IP_VLNV not found in $ip_repo (run package_ip.tcl first)"
}

create_bd_design $PN_BD_NAME

# ------------------------------------------------------------------------------------------
# cells

proc pn_cell {vlnv name {config {}}} {
    set cell [create_bd_cell -type ip -vlnv $vlnv $name]
    if {[llength $config] > 0} {
        set_property -dict $config $cell
    }
    return $cell
}

set ps [pn_cell $PN_VLNV_PS7 $PN_PS_INSTANCE]
if {$use_board} {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} \
        $ps
} else {
    make_bd_intf_pins_external [get_bd_intf_pins $PN_PS_INSTANCE/DDR]
    make_bd_intf_pins_external [get_bd_intf_pins $PN_PS_INSTANCE/FIXED_IO]
}
set ps_config [list \
    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $fclk_mhz \
    CONFIG.PCW_USE_M_AXI_GP0 1 \
    CONFIG.PCW_USE_S_AXI_HP0 1 \
    CONFIG.PCW_S_AXI_HP0_DATA_WIDTH $PN_HP0_BITS \
]
if {$PN_DMA_INTERRUPTS} {
    lappend ps_config CONFIG.PCW_USE_FABRIC_INTERRUPT 1 CONFIG.PCW_IRQ_F2P_INTR 1
}
set_property -dict $ps_config $ps

set core [pn_cell $PN_IP_VLNV $PN_CORE_INSTANCE]

set dma [pn_cell $PN_VLNV_DMA $PN_DMA_INSTANCE [list \
    CONFIG.c_include_sg 0 \
    CONFIG.c_sg_include_stscntrl_strm 0 \
    CONFIG.c_sg_length_width $PN_DMA_LENGTH_WIDTH \
    CONFIG.c_include_mm2s 1 \
    CONFIG.c_include_s2mm 1 \
    CONFIG.c_m_axi_mm2s_data_width $PN_DMA_MM_BITS \
    CONFIG.c_m_axis_mm2s_tdata_width $PN_STREAM_BITS \
    CONFIG.c_m_axi_s2mm_data_width $PN_DMA_MM_BITS \
    CONFIG.c_s_axis_s2mm_tdata_width $PN_STREAM_BITS \
    CONFIG.c_mm2s_burst_size $PN_DMA_BURST \
    CONFIG.c_s2mm_burst_size $PN_DMA_BURST \
]]

set reset [pn_cell $PN_VLNV_RESET $PN_RESET_INSTANCE]

set gp0_slaves 2
if {$PN_DMA_INTERRUPTS} {
    set gp0_slaves 3
}
set gp0 [pn_cell $PN_VLNV_INTERCONNECT $PN_GP0_INTERCONNECT [list CONFIG.NUM_MI $gp0_slaves]]
set hp0 [pn_cell $PN_VLNV_SMARTCONNECT $PN_HP0_INTERCONNECT [list CONFIG.NUM_SI 2 CONFIG.NUM_MI 1]]

# optional: DMA interrupts through an AXI interrupt controller on IRQ_F2P[0]
if {$PN_DMA_INTERRUPTS} {
    pn_cell $PN_VLNV_CONCAT $PN_IRQ_CONCAT [list CONFIG.NUM_PORTS 2]
    pn_cell $PN_VLNV_INTC $PN_INTC_INSTANCE
}

# ------------------------------------------------------------------------------------------
# interfaces

proc pn_link {from to} {
    connect_bd_intf_net [get_bd_intf_pins $from] [get_bd_intf_pins $to]
}

# register access from the PS
pn_link $PN_PS_INSTANCE/M_AXI_GP0 $PN_GP0_INTERCONNECT/S00_AXI
pn_link $PN_GP0_INTERCONNECT/M00_AXI $PN_CORE_INSTANCE/s_axil
pn_link $PN_GP0_INTERCONNECT/M01_AXI $PN_DMA_INSTANCE/S_AXI_LITE

# streams
pn_link $PN_DMA_INSTANCE/M_AXIS_MM2S $PN_CORE_INSTANCE/s_axis
pn_link $PN_CORE_INSTANCE/m_axis $PN_DMA_INSTANCE/S_AXIS_S2MM

# DMA to DDR
pn_link $PN_DMA_INSTANCE/M_AXI_MM2S $PN_HP0_INTERCONNECT/S00_AXI
pn_link $PN_DMA_INSTANCE/M_AXI_S2MM $PN_HP0_INTERCONNECT/S01_AXI
pn_link $PN_HP0_INTERCONNECT/M00_AXI $PN_PS_INSTANCE/S_AXI_HP0

if {$PN_DMA_INTERRUPTS} {
    pn_link $PN_GP0_INTERCONNECT/M02_AXI $PN_INTC_INSTANCE/s_axi
}

# ------------------------------------------------------------------------------------------
# clock and resets

proc pn_net {pins} {
    set objects {}
    foreach pin $pins {
        set object [get_bd_pins $pin]
        if {$object eq ""} {
            pn_fail "block design has no pin $pin"
        }
        lappend objects $object
    }
    connect_bd_net {*}$objects
}

set clocked [list \
    $PN_PS_INSTANCE/FCLK_CLK0 \
    $PN_PS_INSTANCE/M_AXI_GP0_ACLK \
    $PN_PS_INSTANCE/S_AXI_HP0_ACLK \
    $PN_RESET_INSTANCE/slowest_sync_clk \
    $PN_CORE_INSTANCE/clk \
    $PN_DMA_INSTANCE/s_axi_lite_aclk \
    $PN_DMA_INSTANCE/m_axi_mm2s_aclk \
    $PN_DMA_INSTANCE/m_axi_s2mm_aclk \
    $PN_GP0_INTERCONNECT/ACLK \
    $PN_GP0_INTERCONNECT/S00_ACLK \
    $PN_HP0_INTERCONNECT/aclk \
]
set peripheral_resets [list \
    $PN_RESET_INSTANCE/peripheral_aresetn \
    $PN_DMA_INSTANCE/axi_resetn \
    $PN_GP0_INTERCONNECT/S00_ARESETN \
    $PN_HP0_INTERCONNECT/aresetn \
]
if {$PN_DMA_INTERRUPTS} {
    lappend clocked $PN_INTC_INSTANCE/s_axi_aclk
    lappend peripheral_resets $PN_INTC_INSTANCE/s_axi_aresetn
}
for {set i 0} {$i < $gp0_slaves} {incr i} {
    lappend clocked [format "%s/M%02d_ACLK" $PN_GP0_INTERCONNECT $i]
    lappend peripheral_resets [format "%s/M%02d_ARESETN" $PN_GP0_INTERCONNECT $i]
}

pn_net $clocked
pn_net [list $PN_PS_INSTANCE/FCLK_RESET0_N $PN_RESET_INSTANCE/ext_reset_in]
pn_net [list $PN_RESET_INSTANCE/interconnect_aresetn $PN_GP0_INTERCONNECT/ARESETN]
pn_net $peripheral_resets
# neuro_core's rst is active high (declared ACTIVE_HIGH by package_ip.tcl)
pn_net [list $PN_RESET_INSTANCE/peripheral_reset $PN_CORE_INSTANCE/rst]

if {$PN_DMA_INTERRUPTS} {
    pn_net [list $PN_DMA_INSTANCE/mm2s_introut $PN_IRQ_CONCAT/In0]
    pn_net [list $PN_DMA_INSTANCE/s2mm_introut $PN_IRQ_CONCAT/In1]
    pn_net [list $PN_IRQ_CONCAT/dout $PN_INTC_INSTANCE/intr]
    pn_net [list $PN_INTC_INSTANCE/irq $PN_PS_INSTANCE/IRQ_F2P]
}

# ------------------------------------------------------------------------------------------
# address map

proc pn_map {space segment offset range} {
    assign_bd_address -offset $offset -range $range \
        -target_address_space [get_bd_addr_spaces $space] [get_bd_addr_segs $segment] -force
}

pn_map $PN_PS_INSTANCE/Data $PN_CORE_INSTANCE/$PN_REGISTER_BUS/$PN_ADDRESS_BLOCK \
    $PN_CORE_BASE $PN_CORE_RANGE
pn_map $PN_PS_INSTANCE/Data $PN_DMA_INSTANCE/S_AXI_LITE/Reg $PN_DMA_BASE $PN_DMA_RANGE
if {$PN_DMA_INTERRUPTS} {
    pn_map $PN_PS_INSTANCE/Data $PN_INTC_INSTANCE/S_AXI/Reg $PN_INTC_BASE $PN_INTC_RANGE
}
# the DMA sees all of DDR through HP0
foreach space {Data_MM2S Data_S2MM} {
    assign_bd_address -target_address_space [get_bd_addr_spaces $PN_DMA_INSTANCE/$space] \
        [get_bd_addr_segs $PN_PS_INSTANCE/S_AXI_HP0/HP0_DDR_LOWOCM] -force
}

# ------------------------------------------------------------------------------------------
# validate, generate (writes the .hwh), wrapper as top

validate_bd_design
save_bd_design
set bd_file [get_files $PN_BD_NAME.bd]
generate_target all $bd_file
set wrapper [make_wrapper -files $bd_file -top]
if {![file isfile $wrapper]} {
    set candidates [glob -nocomplain \
        [file join $proj_dir pn_overlay.gen sources_1 bd $PN_BD_NAME hdl ${PN_BD_NAME}_wrapper.v] \
        [file join $proj_dir pn_overlay.srcs sources_1 bd $PN_BD_NAME hdl ${PN_BD_NAME}_wrapper.v]]
    if {[llength $candidates] == 0} {
        pn_fail "make_wrapper wrote no ${PN_BD_NAME}_wrapper.v"
    }
    set wrapper [lindex $candidates 0]
}
add_files -norecurse $wrapper
set_property top ${PN_BD_NAME}_wrapper [get_filesets sources_1]
update_compile_order -fileset sources_1
close_project
pn_info "project written to $proj_dir"
