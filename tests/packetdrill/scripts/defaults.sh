#!/bin/bash
# The sysctls these scripts assume, set on the namespace's kernel; the ustack adapter copies them.
sysctl -q net.ipv4.tcp_timestamps=1
sysctl -q net.ipv4.tcp_sack=1
sysctl -q net.ipv4.tcp_window_scaling=1
sysctl -q net.ipv4.tcp_syncookies=1
sysctl -q net.ipv4.tcp_syn_retries=6
sysctl -q net.ipv4.tcp_synack_retries=5
sysctl -q net.ipv4.tcp_syn_linear_timeouts=4
sysctl -q net.ipv4.tcp_rmem="4096 540000 15728640"
sysctl -q net.ipv4.tcp_wmem="4096 262144 4194304"
