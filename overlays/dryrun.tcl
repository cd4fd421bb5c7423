# Run one build script under plain tclsh, without Vivado: every Vivado command the scripts use
# is a stub that appends its name and arguments to a log (one Tcl list per line) and returns a
# plausible value. A command that is not stubbed is an error, so a misspelt or unexpected
# Vivado command fails the dry run. It checks syntax, control flow, argument handling and the
# values the scripts pass to Vivado, not what Vivado would do with them.
#
#   tclsh dryrun.tcl -log FILE -work DIR [-slack NS] [-board 0|1] -- SCRIPT [script args...]
#
# -slack sets the worst setup and hold slack the stubs report (default 0.5); -board 0 makes
# the PYNQ-Z2 board part look uninstalled.

namespace eval ::pn_dry {
    variable log_fd ""
    variable work ""
    variable slack 0.5
    # the worst setup path the stubs report
    variable start_pin {neuro_i/neuro_core_0/inst/u_net/g_layer[2].u_layer/acc_reg[0]/C}
    variable end_pin {neuro_i/neuro_core_0/inst/u_net/g_layer[2].u_layer/act_reg[0]/D}
    variable board 1
    variable props
    array set props {}
    variable serial 0
}

proc ::pn_dry::option {argv name default} {
    set i [lsearch -exact $argv $name]
    if {$i < 0} {
        return $default
    }
    return [lindex $argv [expr {$i + 1}]]
}

proc ::pn_dry::record {cmd arguments} {
    variable log_fd
    puts $log_fd [linsert $arguments 0 $cmd]
    flush $log_fd
}

# The positional arguments of a call (options and their values removed). Options that take no
# value are listed in `flags`.
proc ::pn_dry::positional {arguments {flags {-quiet -verbose -force -all -top -rebuild -norecurse
        -set_current -report_unconstrained -dict}}} {
    set out {}
    set skip 0
    foreach a $arguments {
        if {$skip} {
            set skip 0
            continue
        }
        if {[string match -* $a] && ![string is double -strict $a]} {
            if {[lsearch -exact $flags $a] < 0} {
                set skip 1
            }
            continue
        }
        lappend out $a
    }
    return $out
}

proc ::pn_dry::last {arguments} {
    return [lindex [positional $arguments] end]
}

proc ::pn_dry::new_object {kind name} {
    variable serial
    incr serial
    return "$kind:$name"
}

proc ::pn_dry::touch {path {text ""}} {
    file mkdir [file dirname $path]
    set fd [open $path w]
    puts -nonewline $fd $text
    close $fd
    return $path
}

# ------------------------------------------------------------------------------------------
# stubs by behaviour

namespace eval ::ipx {}

# commands that only record
set ::pn_dry::void_commands {
    set_param update_ip_catalog update_compile_order close_project open_project
    connect_bd_net connect_bd_intf_net assign_bd_address apply_bd_automation
    validate_bd_design save_bd_design generate_target add_files create_bd_design
    make_bd_intf_pins_external reset_run wait_on_run open_run
    ipx::package_project ipx::remove_user_parameter ipx::remove_hdl_parameter
    ipx::remove_bus_interface ipx::remove_memory_map ipx::associate_bus_interfaces
    ipx::create_xgui_files ipx::update_checksums ipx::check_integrity ipx::save_core
}
# commands that return the object named by their last positional argument
set ::pn_dry::lookup_commands {
    get_bd_cells get_bd_pins get_bd_intf_pins get_bd_addr_spaces get_bd_addr_segs get_runs
    get_filesets get_ipdefs ipx::get_ports create_project
}

foreach cmd $::pn_dry::void_commands {
    proc $cmd {args} "::pn_dry::record [list $cmd] \$args; return {}"
}
foreach cmd $::pn_dry::lookup_commands {
    proc $cmd {args} "::pn_dry::record [list $cmd] \$args; return \[::pn_dry::last \$args\]"
}

proc version {args} {
    ::pn_dry::record version $args
    return 2022.1
}
proc current_project {args} {
    ::pn_dry::record current_project $args
    return project
}
proc get_board_parts {args} {
    ::pn_dry::record get_board_parts $args
    if {$::pn_dry::board} {
        return [::pn_dry::last $args]
    }
    return {}
}
proc create_bd_cell {args} {
    ::pn_dry::record create_bd_cell $args
    return [::pn_dry::last $args]
}
proc get_files {args} {
    ::pn_dry::record get_files $args
    if {[lsearch -exact $args -of_objects] >= 0} {
        # generated files of a block design: the hardware handoff among them
        return [list [::pn_dry::touch [file join $::pn_dry::work gen neuro.hwh] "<EDKSYSTEM/>"]]
    }
    return [::pn_dry::last $args]
}
proc make_wrapper {args} {
    ::pn_dry::record make_wrapper $args
    return [::pn_dry::touch [file join $::pn_dry::work gen neuro_wrapper.v] "module neuro_wrapper;\nendmodule\n"]
}
proc launch_runs {args} {
    ::pn_dry::record launch_runs $args
    set run [lindex [::pn_dry::positional $args] 0]
    if {$run eq "impl_1"} {
        ::pn_dry::touch [file join $::pn_dry::work runs impl_1 neuro_wrapper.bit] "bit"
    }
    return {}
}
proc get_timing_paths {args} {
    ::pn_dry::record get_timing_paths $args
    return path
}
# The reports in the layout of Vivado's text reports (made-up figures), so that the parser of
# pynq_neuro/overlay/vivado_reports.py can read what a dry run writes.
proc report_utilization {args} {
    ::pn_dry::record report_utilization $args
    set rule "+-----------------+------+-------+------------+-----------+-------+"
    set head "|    Site Type    | Used | Fixed | Prohibited | Available | Util% |"
    set text "| Device       : 7z020clg400-1\n| Design State : Routed (dry run)\n\n"
    foreach {section rows} {
        "1. Slice Logic" {{Slice LUTs} 1000 53200 1.88 {Slice Registers} 2000 106400 1.88}
        "2. Memory" {{Block RAM Tile} 10 140 7.14}
        "3. DSP" {DSPs 0 220 0.00}
    } {
        append text "$section\n[string repeat - [string length $section]]\n\n$rule\n$head\n$rule\n"
        foreach {name used avail util} $rows {
            append text [format "| %-15s | %4s |     0 |          0 | %9s | %5s |\n" \
                $name $used $avail $util]
        }
        append text "$rule\n\n"
    }
    ::pn_dry::touch [::pn_dry::option $args -file ""] $text
    return {}
}
proc report_timing_summary {args} {
    ::pn_dry::record report_timing_summary $args
    set slack [format %.3f $::pn_dry::slack]
    if {$::pn_dry::slack >= 0} {
        set verdict "All user specified timing constraints are met."
        set state MET
        set failing 0
        set tns 0.000
    } else {
        set verdict "Timing constraints are not met."
        set state VIOLATED
        set failing 1
        set tns $slack
    }
    set text "| Design Timing Summary\n| ---------------------\n\n"
    append text "    WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints      WHS(ns)\n"
    append text "    -------      -------  ---------------------  -------------------      -------\n"
    append text [format "%11s  %11s  %21s  %19s  %11s\n\n\n" $slack $tns $failing 100 $slack]
    append text "$verdict\n\n\nMax Delay Paths\n\n"
    append text "Slack ($state) :        ${slack}ns  (required time - arrival time)\n"
    append text "  Source:                 $::pn_dry::start_pin\n"
    append text "  Destination:            $::pn_dry::end_pin\n"
    append text "  Path Type:              Setup (Max at Slow Process Corner)\n"
    append text "  Logic Levels:           4  (LUT6=4)\n"
    ::pn_dry::touch [::pn_dry::option $args -file ""] $text
    return {}
}

proc set_property {args} {
    ::pn_dry::record set_property $args
    if {[lindex $args 0] eq "-dict"} {
        set pairs [lindex $args 1]
        set objects [lrange $args 2 end]
    } else {
        set pairs [lrange $args 0 1]
        set objects [lrange $args 2 end]
    }
    foreach object $objects {
        foreach {name value} $pairs {
            set ::pn_dry::props([string tolower $name]|$object) $value
        }
    }
    return {}
}

proc get_property {args} {
    ::pn_dry::record get_property $args
    set plain [::pn_dry::positional $args]
    set name [string tolower [lindex $plain 0]]
    set object [lindex $plain 1]
    if {[info exists ::pn_dry::props($name|$object)]} {
        return $::pn_dry::props($name|$object)
    }
    switch -exact -- $name {
        name { return [lindex [split $object :] end] }
        progress { return 100% }
        status { return "$object Complete!" }
        directory { return [file join $::pn_dry::work runs $object] }
        slack { return $::pn_dry::slack }
        startpoint_pin { return $::pn_dry::start_pin }
        endpoint_pin { return $::pn_dry::end_pin }
        default { return "" }
    }
}

# IP packager objects
proc ipx::current_core {args} {
    ::pn_dry::record ipx::current_core $args
    return core:neuro_core
}
# lookups of named objects: `kind:name` for a name, else one object of each of `names`
proc ::pn_dry::named_objects {cmd kind names arguments} {
    ::pn_dry::record $cmd $arguments
    set name [lindex [::pn_dry::positional $arguments] 0]
    if {$name ne ""} {
        return [list $kind:$name]
    }
    set objects {}
    foreach n $names {
        lappend objects $kind:$n
    }
    return $objects
}
foreach {cmd kind names} {
    get_user_parameters user_parameter {Component_Name NUM_LAYERS MEM_DIR}
    get_hdl_parameters hdl_parameter {NUM_LAYERS MEM_DIR}
    get_bus_interfaces bus_interface {S_AXIS CLK}
} {
    proc ipx::$cmd {args} "::pn_dry::named_objects [list ipx::$cmd $kind $names] \$args"
}
proc ipx::get_memory_maps {args} {
    ::pn_dry::record ipx::get_memory_maps $args
    return {memory_map:S_AXIL}
}
proc ipx::get_file_groups {args} {
    ::pn_dry::record ipx::get_file_groups $args
    return {file_group:xilinx_anylanguagesynthesis file_group:xilinx_anylanguagebehavioralsimulation}
}
proc ipx::get_files {args} {
    ::pn_dry::record ipx::get_files $args
    return {file:hdl/neuro_params.vh}
}
foreach {cmd kind} {
    ipx::add_bus_interface bus_interface ipx::add_port_map port_map
    ipx::add_bus_parameter bus_parameter ipx::add_memory_map memory_map
    ipx::add_address_block address_block ipx::add_register register
    ipx::add_field field
} {
    proc $cmd {args} "::pn_dry::record [list $cmd] \$args; return \[::pn_dry::new_object [list $kind] \[lindex \$args 0\]\]"
}

# ------------------------------------------------------------------------------------------
# run the script

set dash [lsearch -exact $argv --]
if {$dash < 0 || $dash + 1 >= [llength $argv]} {
    puts stderr "usage: tclsh dryrun.tcl -log FILE -work DIR \[-slack NS\] \[-board 0|1\] -- SCRIPT \[args...\]"
    exit 2
}
set own [lrange $argv 0 [expr {$dash - 1}]]
set script [lindex $argv [expr {$dash + 1}]]
set ::pn_dry::work [file normalize [::pn_dry::option $own -work [pwd]]]
set ::pn_dry::slack [::pn_dry::option $own -slack 0.5]
set ::pn_dry::board [::pn_dry::option $own -board 1]
set ::pn_dry::log_fd [open [::pn_dry::option $own -log [file join $::pn_dry::work dryrun.log]] w]

set argv [lrange $argv [expr {$dash + 2}] end]
set argc [llength $argv]
set ::argv0 $script
if {[catch {uplevel #0 [list source $script]} message]} {
    puts stderr $message
    close $::pn_dry::log_fd
    exit 1
}
close $::pn_dry::log_fd
exit 0
