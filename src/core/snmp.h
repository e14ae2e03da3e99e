/*
 * Counters, named as Linux's /proc/net/snmp and /proc/net/netstat name them and as `nstat`
 * prints them (group prefix + field).  Keeping Linux's names means the muscle memory of
 * `nstat -az | grep ListenDrops` carries over to ustack.  The neighbour cache's statistics
 * follow /proc/net/stat/arp_cache.
 */
#ifndef USTACK_CORE_SNMP_H
#define USTACK_CORE_SNMP_H

#define USTACK_MIB_LIST(X) \
	X(IpInReceives) X(IpInHdrErrors) X(IpInAddrErrors) X(IpForwDatagrams) \
	X(IpInUnknownProtos) X(IpInDiscards) X(IpInDelivers) X(IpOutRequests) \
	X(IpOutDiscards) X(IpOutNoRoutes) X(IpReasmTimeout) X(IpReasmReqds) \
	X(IpReasmOKs) X(IpReasmFails) X(IpFragOKs) X(IpFragFails) X(IpFragCreates) \
	X(IpOutTransmits) \
	X(IpExtInNoRoutes) X(IpExtInTruncatedPkts) X(IpExtInBcastPkts) X(IpExtInOctets) \
	X(IpExtOutOctets) X(IpExtInCsumErrors) X(IpExtReasmOverlaps) \
	X(IcmpInMsgs) X(IcmpInErrors) X(IcmpInCsumErrors) X(IcmpInDestUnreachs) \
	X(IcmpInTimeExcds) X(IcmpInParmProbs) X(IcmpInEchos) X(IcmpInEchoReps) \
	X(IcmpInTimestamps) X(IcmpInTimestampReps) \
	X(IcmpOutMsgs) X(IcmpOutErrors) X(IcmpOutRateLimitGlobal) X(IcmpOutDestUnreachs) \
	X(IcmpOutTimeExcds) X(IcmpOutEchos) X(IcmpOutEchoReps) \
	X(IcmpMsgInType0) X(IcmpMsgInType3) X(IcmpMsgInType8) X(IcmpMsgInType11) \
	X(IcmpMsgInType13) X(IcmpMsgInType14) \
	X(IcmpMsgOutType0) X(IcmpMsgOutType3) X(IcmpMsgOutType8) X(IcmpMsgOutType11) \
	X(TcpActiveOpens) X(TcpPassiveOpens) X(TcpAttemptFails) X(TcpEstabResets) \
	X(TcpCurrEstab) X(TcpInSegs) X(TcpOutSegs) X(TcpRetransSegs) X(TcpInErrs) \
	X(TcpOutRsts) X(TcpInCsumErrors) \
	X(TcpExtListenOverflows) X(TcpExtListenDrops) X(TcpExtTCPReqQFullDrop) \
	X(TcpExtTCPReqQFullDoCookies) X(TcpExtSyncookiesSent) X(TcpExtSyncookiesRecv) \
	X(TcpExtSyncookiesFailed) X(TcpExtTCPTimeouts) X(TcpExtTCPSynRetrans) X(TcpExtEmbryonicRsts) \
	X(TcpExtTCPAbortOnClose) X(TcpExtTCPAbortOnData) X(TcpExtTCPAbortOnTimeout) X(TcpExtTW) X(TcpExtTWKilled) X(TcpExtTCPTimeWaitOverflow) X(TcpExtPAWSTimewait) X(TcpExtTCPACKSkippedTimeWait) X(TcpExtTCPACKSkippedFinWait2) \
	X(TcpExtTCPRenoRecovery) X(TcpExtTCPOFOQueue) X(TcpExtTCPOFODrop) X(TcpExtTCPOFOMerge) X(TcpExtOfoPruned) X(TcpExtTCPChallengeACK) \
	X(TcpExtTCPSYNChallenge) X(TcpExtPAWSActive) X(TcpExtPAWSEstab) X(TcpExtDelayedACKs) \
	X(TcpExtTCPRcvQDrop) X(TcpExtTCPZeroWindowDrop) X(TcpExtTCPSackRecovery) X(TcpExtTCPKeepAlive) \
	X(TcpExtTCPAbortOnLinger) \
	X(TcpExtBeyondWindow) X(TcpExtTCPMigrateReqSuccess) X(TcpExtTCPMigrateReqFailure) X(TcpExtTCPACKSkippedSynRecv) X(TcpExtTCPACKSkippedSeq) X(TcpExtTCPACKSkippedPAWS) X(TcpExtTCPACKSkippedChallenge) \
	X(TcpExtOutOfWindowIcmps) X(TcpExtTWRecycled) X(TcpExtTCPDSACKRecv) X(TcpExtTCPDSACKOldSent) X(TcpExtTCPDSACKOfoSent) X(TcpExtDelayedACKLost) X(TcpExtTCPSACKReneging) X(TcpExtTCPSACKReorder) \
	X(TcpExtTCPLossProbes) X(TcpExtTCPLossProbeRecovery) \
	X(TcpExtTCPFastOpenActive) X(TcpExtTCPFastOpenActiveFail) X(TcpExtTCPFastOpenPassive) \
	X(TcpExtTCPFastOpenPassiveFail) X(TcpExtTCPFastOpenListenOverflow) X(TcpExtTCPFastOpenCookieReqd) \
	X(TcpExtTCPFastOpenBlackhole) X(TcpExtTCPFastOpenPassiveAltKey) \
	X(TcpExtTCPHystartTrainDetect) X(TcpExtTCPHystartTrainCwnd) X(TcpExtTCPHystartDelayDetect) \
	X(TcpExtTCPHystartDelayCwnd)

#define USTACK_ARP_STAT_LIST(X) \
	X(entries) X(allocs) X(destroys) X(lookups) X(hits) X(res_failed) \
	X(rcv_probes_ucast) X(rcv_probes_mcast) X(periodic_gc_runs) X(forced_gc_runs) \
	X(unresolved_discards) X(table_fulls)

enum mib_id {
#define X(n) MIB_##n,
	USTACK_MIB_LIST(X)
#undef X
#define X(n) ARPSTAT_##n,
	USTACK_ARP_STAT_LIST(X)
#undef X
	MIB_MAX
};

#define MIB_INC(st, id) ((st)->mib[MIB_##id]++)
#define MIB_ADD(st, id, n) ((st)->mib[MIB_##id] += (n))
#define ARPSTAT_INC(st, id) ((st)->mib[ARPSTAT_##id]++)

#endif
