# Package neuro_core (hdl/*.v) with one compiled artifact (neuro_params.vh, mem/*.mem) as the
# Vivado IP pynq-neuro.org:pynq_neuro:neuro_core:1.0.
#
#   vivado -mode batch -source package_ip.tcl -tclargs -artifact DIR [-hdl DIR] [-ip_repo DIR]
#          [-work DIR]
#
# The IP is self-contained: sources, header and memory images are copied into
# <ip_repo>/neuro_core/. The synthesized network is the artifact's: every neuro_core parameter
# takes its default from the copied neuro_params.vh, except MEM_DIR, which points at the copied
# memory images so that $readmemh initialises the block RAMs. The IP therefore has no
# user-configurable parameters: one artifact, one IP.

set here [file dirname [file normalize [info script]]]
source [file join $here config.tcl]

# ------------------------------------------------------------------------------------------
# arguments

set artifact_arg [pn_arg -artifact ""]
if {$artifact_arg eq ""} {
    pn_fail "package_ip.tcl needs -artifact DIR (a directory written by `pynq-neuro compile`)"
}
set artifact [file normalize $artifact_arg]
set hdl_dir  [file normalize [pn_arg -hdl [file join $here .. hdl]]]
set ip_repo  [file normalize [pn_arg -ip_repo [file join $here build ip_repo]]]
set work_dir [file normalize [pn_arg -work [file join $here build package_ip]]]

lassign [pn_vlnv_parts $PN_IP_VLNV] ip_vendor ip_library ip_name ip_version

# ------------------------------------------------------------------------------------------
# check the inputs and copy them into the IP directory

proc pn_check_artifact {artifact files} {
    if {![file isdirectory $artifact]} {
        pn_fail "artifact directory $artifact does not exist (run `pynq-neuro compile ... -o $artifact`)"
    }
    foreach f $files {
        if {![file isfile [file join $artifact $f]]} {
            pn_fail "artifact $artifact has no $f: not a pynq-neuro artifact, or an incomplete one"
        }
    }
    set mems [glob -nocomplain -directory [file join $artifact mem] *.mem]
    if {[llength $mems] == 0} {
        pn_fail "artifact $artifact has no mem/*.mem images"
    }
    return [lsort $mems]
}

set mem_files [pn_check_artifact $artifact $PN_ARTIFACT_FILES]
set hdl_files [lsort [glob -nocomplain -directory $hdl_dir *.v *.vh]]
if {[lsearch -glob $hdl_files "*/$PN_CORE_TOP.v"] < 0} {
    pn_fail "$hdl_dir has no $PN_CORE_TOP.v"
}
if {[string first " " $ip_repo] >= 0} {
    # MEM_DIR becomes a $readmemh path prefix; keep it free of spaces
    pn_fail "the IP repository path '$ip_repo' contains a space; choose another -ip_repo"
}

set ip_dir [file join $ip_repo $ip_name]
file delete -force $ip_dir
file mkdir [file join $ip_dir hdl] [file join $ip_dir mem]
foreach f $hdl_files {
    file copy -force $f [file join $ip_dir hdl]
}
file copy -force [file join $artifact neuro_params.vh] [file join $ip_dir hdl]
foreach f $mem_files {
    file copy -force $f [file join $ip_dir mem]
}
# provenance: the manifest of the packaged network (fingerprint, folding, predictions)
file copy -force [file join $artifact manifest.json] $ip_dir

set ip_hdl [lsort [glob -directory [file join $ip_dir hdl] *.v]]
# the headers the modules include: the core's (hdl/*.vh) and the network's neuro_params.vh
set ip_headers [lsort [glob -directory [file join $ip_dir hdl] *.vh]]
set ip_mems [lsort [glob -directory [file join $ip_dir mem] *.mem]]
set mem_prefix "[file join $ip_dir mem]/"
pn_info "packaging $PN_IP_VLNV from [llength $ip_hdl] Verilog files and [llength $ip_mems] memory images"

# ------------------------------------------------------------------------------------------
# packaging project

create_project -force pn_package_ip $work_dir -part $PN_PART
set_property target_language Verilog [current_project]
add_files -norecurse $ip_hdl
add_files -norecurse $ip_headers
set_property file_type {Verilog Header} [get_files $ip_headers]
add_files -norecurse $ip_mems
set_property include_dirs [list [file join $ip_dir hdl]] [get_filesets sources_1]
set_property top $PN_CORE_TOP [get_filesets sources_1]
update_compile_order -fileset sources_1

ipx::package_project -root_dir $ip_dir -vendor $ip_vendor -library $ip_library \
    -taxonomy /UserIP -set_current true -force
set core [ipx::current_core]
set_property vendor $ip_vendor $core
set_property library $ip_library $core
set_property name $ip_name $core
set_property version $ip_version $core
set_property display_name $PN_IP_DISPLAY_NAME $core
set_property description "Event-driven TDNN neuron arrays for MNIST (pynq-neuro), one compiled network" $core
set_property supported_families {zynq Production} $core

# the headers are included by the modules, not compiled on their own
foreach group [ipx::get_file_groups -of_objects $core] {
    foreach f [ipx::get_files -quiet *.vh -of_objects $group] {
        set_property type verilogSource $f
        set_property is_include true $f
    }
}

# ------------------------------------------------------------------------------------------
# parameters: none configurable; MEM_DIR fixed to the copied images

foreach p [ipx::get_user_parameters -of_objects $core] {
    set name [get_property name $p]
    if {$name eq "Component_Name"} {
        continue
    }
    ipx::remove_user_parameter $name $core
}
foreach p [ipx::get_hdl_parameters -of_objects $core] {
    set name [get_property name $p]
    if {[lsearch -exact $PN_CORE_PARAMETERS $name] < 0} {
        ipx::remove_hdl_parameter $name $core
    }
}
set mem_param [ipx::get_hdl_parameters MEM_DIR -of_objects $core]
if {$mem_param eq ""} {
    pn_fail "$PN_CORE_TOP has no MEM_DIR parameter: the memory images cannot be attached"
}
set_property value_format string $mem_param
set_property value $mem_prefix $mem_param

# ------------------------------------------------------------------------------------------
# bus interfaces: replace whatever the packager inferred by explicit declarations

foreach bif [ipx::get_bus_interfaces -of_objects $core] {
    ipx::remove_bus_interface [get_property name $bif] $core
}
foreach map [ipx::get_memory_maps -of_objects $core] {
    ipx::remove_memory_map [get_property name $map] $core
}

proc pn_require_port {core port context} {
    if {[ipx::get_ports -quiet $port -of_objects $core] eq ""} {
        pn_fail "$context: the packaged module has no port $port"
    }
}

proc pn_add_bus_interface {core name kind mode ports} {
    switch -exact -- $kind {
        axis {
            set bus_type xilinx.com:interface:axis:1.0
            set abstraction xilinx.com:interface:axis_rtl:1.0
        }
        aximm {
            set bus_type xilinx.com:interface:aximm:1.0
            set abstraction xilinx.com:interface:aximm_rtl:1.0
        }
        default {
            pn_fail "bus interface $name: unknown kind '$kind' (axis or aximm)"
        }
    }
    set bif [ipx::add_bus_interface $name $core]
    set_property abstraction_type_vlnv $abstraction $bif
    set_property bus_type_vlnv $bus_type $bif
    set_property interface_mode $mode $bif
    foreach {logical physical} $ports {
        pn_require_port $core $physical "bus interface $name"
        set_property physical_name $physical [ipx::add_port_map $logical $bif]
    }
    return $bif
}

set bus_names {}
foreach {name kind mode ports} $PN_BUS_INTERFACES {
    pn_add_bus_interface $core $name $kind $mode $ports
    lappend bus_names $name
}

# a slave interface of the signal bus `kind` (reset or clock) on the port `port`, whose
# logical port is `logical`
proc pn_add_signal_interface {core port kind logical} {
    pn_require_port $core $port $kind
    set bif [ipx::add_bus_interface $port $core]
    set_property abstraction_type_vlnv xilinx.com:signal:${kind}_rtl:1.0 $bif
    set_property bus_type_vlnv xilinx.com:signal:${kind}:1.0 $bif
    set_property interface_mode slave $bif
    set_property physical_name $port [ipx::add_port_map $logical $bif]
    return $bif
}

# reset: synchronous, active high
set rst_if [pn_add_signal_interface $core $PN_RESET_PORT reset RST]
set_property value $PN_RESET_POLARITY [ipx::add_bus_parameter POLARITY $rst_if]

# clock: every bus interface and the reset are synchronous to it
pn_add_signal_interface $core $PN_CLOCK_PORT clock CLK
foreach name $bus_names {
    ipx::associate_bus_interfaces -busif $name -clock $PN_CLOCK_PORT $core
}
ipx::associate_bus_interfaces -clock $PN_CLOCK_PORT -reset $PN_RESET_PORT $core

# register map behind s_axil
set reg_map [ipx::add_memory_map $PN_REGISTER_BUS $core]
set_property slave_memory_map_ref $PN_REGISTER_BUS \
    [ipx::get_bus_interfaces $PN_REGISTER_BUS -of_objects $core]
set reg_block [ipx::add_address_block $PN_ADDRESS_BLOCK $reg_map]
set_property range [expr {$PN_CORE_RANGE}] $reg_block
set_property width 32 $reg_block
set_property usage register $reg_block

# the registers (IP-XACT), so that the .hwh carries them and PYNQ's register_map shows them
# BEGIN pn_regmap: generated from pynq_neuro/driver/registers.py
# (python -m pynq_neuro.driver.registers --write); do not edit by hand
set PN_REGISTERS {
    {ID 0x000 read-only {0x504E4E31 ("PNN1")} {}}
    {VERSION 0x004 read-only {{format version[15:0], core version[15:0]} (core version 1)} {}}
    {CONTROL 0x008 read-write {bit 0 SOFT_RESET (self-clearing: clears datapath state, keeps weights), bit 1 LOGITS_ENABLE, bit 2 LOAD_MODE (s_axis carries a load stream), bit 3 CLEAR_ERROR (self-clearing), bit 4 CLEAR_COUNTERS (self-clearing)} {{SOFT_RESET 0 1 write-only {self-clearing: clears datapath state, keeps weights}} {LOGITS_ENABLE 1 1 read-write {LOGITS_ENABLE}} {LOAD_MODE 2 1 read-write {s_axis carries a load stream}} {CLEAR_ERROR 3 1 write-only {self-clearing}} {CLEAR_COUNTERS 4 1 write-only {self-clearing}}}}
    {STATUS 0x00C read-only {bit 0 BUSY, bit 1 ERROR (sticky), bits 15:8 ERROR_CODE (first error), bit 16 LOAD_DONE, bit 17 LOAD_OK} {{BUSY 0 1 read-only {BUSY}} {ERROR 1 1 read-only {sticky}} {ERROR_CODE 8 8 read-only {first error}} {LOAD_DONE 16 1 read-only {LOAD_DONE}} {LOAD_OK 17 1 read-only {LOAD_OK}}}}
    {DIGITS 0x010 read-only {results sent} {}}
    {CYCLES 0x014 read-only {cycles with a digit in flight} {}}
    {STALL_CYCLES 0x018 read-only {cycles the result stream was back-pressured} {}}
    {INPUT_STALL_CYCLES 0x01C read-only {cycles the pixel stream was held (tvalid & !tready)} {}}
    {LOAD_ADDR 0x020 write-only {reserved (writes ignored, reads 0)} {}}
    {LOAD_DATA 0x024 write-only {AXI-Lite loading: next 32-bit word of the load stream (same format as over the stream); the write response waits until the loader takes the word} {}}
    {BATCH 0x028 read-write {digits per stream packet, 1..65535 (reset 1; writing 0 stores 1)} {}}
    {NUM_LAYERS 0x040 read-only {layers synthesized} {}}
    {INPUT_BITS 0x044 read-only {INPUT_BITS} {}}
    {FINGERPRINT_LO 0x048 read-only {low 32 bits of the hardware fingerprint (hex digits 8..15)} {}}
    {FINGERPRINT_HI 0x04C read-only {high 32 bits (hex digits 0..7)} {}}
    {PIXEL_STREAM 0x050 read-only {format of the s_axis pixel stream; bit 0 PACKED (pixels packed at INPUT_BITS bits by the host; 0: four bytes a beat, shifted by the core), bits 15:8 PIXELS_PER_BEAT (pixels of one 32-bit beat (a row starts on a new beat))} {{PACKED 0 1 read-only {pixels packed at INPUT_BITS bits by the host; 0: four bytes a beat, shifted by the core}} {PIXELS_PER_BEAT 8 8 read-only {pixels of one 32-bit beat (a row starts on a new beat)}}}}
}
# END pn_regmap
foreach entry $PN_REGISTERS {
    lassign $entry name offset access description fields
    set reg [ipx::add_register $name $reg_block]
    set_property address_offset $offset $reg
    set_property size 32 $reg
    set_property access $access $reg
    set_property description $description $reg
    foreach f $fields {
        lassign $f field_name lsb width field_access field_description
        set field [ipx::add_field $field_name $reg]
        set_property bit_offset $lsb $field
        set_property bit_width $width $field
        set_property access $field_access $field
        set_property description $field_description $field
    }
}

# ------------------------------------------------------------------------------------------
# save

ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity $core
ipx::save_core $core
close_project
pn_info "IP written to $ip_dir"
