# Synthesize and implement the project written by build_bd.tcl, write the bitstream, and put
# the overlay files side by side:
#
#   <out>/neuro.bit              bitstream
#   <out>/neuro.hwh              hardware handoff (PYNQ reads addresses and IP parameters here)
#   <out>/neuro_utilization.rpt  report_utilization of the routed design
#   <out>/neuro_timing.rpt       report_timing_summary of the routed design
#   <out>/neuro_build.txt        Vivado version, part, worst setup and hold slack
#
#   vivado -mode batch -source build_bitstream.tcl -tclargs [-project DIR] [-out DIR] [-jobs N]
#          [-clock_mhz MHZ]
#
# Fails (exit code 1) when a run fails or when the routed design does not meet timing, naming
# the worst path's start and end points; the reports are written before the timing check so
# that the failure can be read in them (overlays/Makefile turns them into build/report.json
# with pynq_neuro/overlay/vivado_reports.py). -clock_mhz: FCLK0 of the block design (the
# artifact's clock), for the messages and the summary.

set here [file dirname [file normalize [info script]]]
source [file join $here config.tcl]

set proj_dir [file normalize [pn_arg -project [file join $here build project]]]
set out_dir  [file normalize [pn_arg -out [file join $here build out]]]
set jobs     [pn_arg -jobs 2]
set fclk_mhz [pn_arg -clock_mhz $PN_FCLK_MHZ]

set xpr [file join $proj_dir pn_overlay.xpr]
if {![file isfile $xpr]} {
    pn_fail "no project $xpr (run build_bd.tcl first)"
}
file mkdir $out_dir

open_project $xpr

# A run is done when it reached 100 % without an error in its status.
proc pn_run {run args} {
    reset_run $run
    launch_runs $run {*}$args
    wait_on_run $run
    set progress [get_property PROGRESS [get_runs $run]]
    set status [get_property STATUS [get_runs $run]]
    if {$progress ne "100%" || [string match -nocase "*error*" $status] ||
            [string match -nocase "*failed*" $status]} {
        pn_fail "$run did not complete: $status ($progress); see [get_property DIRECTORY [get_runs $run]]"
    }
    pn_info "$run: $status"
}

pn_run synth_1 -jobs $jobs
pn_run impl_1 -to_step write_bitstream -jobs $jobs

# ------------------------------------------------------------------------------------------
# reports and timing

open_run impl_1
set util_rpt [file join $out_dir ${PN_OVERLAY_NAME}_utilization.rpt]
set timing_rpt [file join $out_dir ${PN_OVERLAY_NAME}_timing.rpt]
report_utilization -file $util_rpt
report_timing_summary -max_paths 10 -report_unconstrained -file $timing_rpt

set setup_paths [get_timing_paths -delay_type max -max_paths 1 -nworst 1]
set hold_paths [get_timing_paths -delay_type min -max_paths 1 -nworst 1]
if {$setup_paths eq "" || $hold_paths eq ""} {
    pn_fail "no timed paths in the routed design: the clock constraints are missing"
}
set wns [get_property SLACK $setup_paths]
set whs [get_property SLACK $hold_paths]
set worst_from [get_property STARTPOINT_PIN $setup_paths]
set worst_to [get_property ENDPOINT_PIN $setup_paths]

set summary [open [file join $out_dir ${PN_OVERLAY_NAME}_build.txt] w]
puts $summary "vivado $PN_VIVADO_VERSION (ran [version -short])"
puts $summary "part $PN_PART"
puts $summary "fclk0_mhz $fclk_mhz"
puts $summary "wns_ns $wns"
puts $summary "whs_ns $whs"
puts $summary "worst_setup_path {$worst_from} {$worst_to}"
close $summary

# the summary line Vivado writes when every constraint is met
set met 0
set fd [open $timing_rpt r]
while {[gets $fd line] >= 0} {
    if {[string match "*All user specified timing constraints are met.*" $line]} {
        set met 1
        break
    }
}
close $fd
if {!$met || $wns < 0 || $whs < 0} {
    pn_fail "timing not met at $fclk_mhz MHz: worst setup slack $wns ns (from $worst_from\
        to $worst_to), worst hold slack $whs ns (see $timing_rpt). Compile the network for a\
        lower clock (make -C overlays CLOCK_MHZ=..., i.e. pynq-neuro compile --clock-mhz) or\
        with a smaller LUT budget (LUT_BUDGET); build/report.json suggests a clock."
}
pn_info "timing met: worst setup slack $wns ns, worst hold slack $whs ns"

# ------------------------------------------------------------------------------------------
# overlay files

set bit [file join [get_property DIRECTORY [get_runs impl_1]] ${PN_BD_NAME}_wrapper.bit]
if {![file isfile $bit]} {
    pn_fail "write_bitstream produced no $bit"
}

set hwh ""
foreach f [get_files -all -of_objects [get_files $PN_BD_NAME.bd]] {
    if {[file tail $f] eq "$PN_BD_NAME.hwh"} {
        set hwh $f
        break
    }
}
if {$hwh eq "" || ![file isfile $hwh]} {
    # where Vivado 2020.2 and later (.gen) and earlier versions (.srcs) put the handoff
    set candidates [glob -nocomplain \
        [file join $proj_dir pn_overlay.gen sources_1 bd $PN_BD_NAME hw_handoff $PN_BD_NAME.hwh] \
        [file join $proj_dir pn_overlay.srcs sources_1 bd $PN_BD_NAME hw_handoff $PN_BD_NAME.hwh]]
    if {[llength $candidates] == 0} {
        pn_fail "no $PN_BD_NAME.hwh among the generated files of $PN_BD_NAME.bd"
    }
    set hwh [lindex $candidates 0]
}

file copy -force $bit [file join $out_dir $PN_OVERLAY_NAME.bit]
file copy -force $hwh [file join $out_dir $PN_OVERLAY_NAME.hwh]
close_project
pn_info "overlay written: [file join $out_dir $PN_OVERLAY_NAME.bit], [file join $out_dir $PN_OVERLAY_NAME.hwh]"
